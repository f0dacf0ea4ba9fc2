"""Screen numbers: the OCX groups requests and real-time registrations by 4-digit "screens".

Rules (KOA Studio): a screen is a 4-digit string other than ``0000``; at most 200 screens
are in use at once; ``SetRealReg`` takes at most 100 codes per call and per screen, and its
last argument ``"0"`` replaces what the screen had while ``"1"`` adds to it. koapy's
``KiwoomOpenApiPlusScreenManager`` keeps the same books.
"""

from typing import Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

MAX_SCREENS = 200
CODES_PER_SCREEN = 100


class ScreenError(RuntimeError):
    """No screen number left, or a number that breaks the rules."""


def check_screen(screen: str) -> str:
    if len(screen) != 4 or not screen.isdigit() or screen == "0000":
        raise ScreenError("a screen is 4 digits other than 0000, got {!r}".format(screen))
    return screen


class ScreenNumbers:
    """Hands out screen numbers from ``first`` upwards, at most ``limit`` in use at once."""

    def __init__(self, first: int, limit: int = MAX_SCREENS) -> None:
        if not 1 <= first <= 9999:
            raise ScreenError(
                "the first screen must be between 0001 and 9999, got {}".format(first)
            )
        self.first = first
        self.limit = limit
        self._used: Set[str] = set()

    def take(self) -> str:
        if len(self._used) >= self.limit:
            raise ScreenError("all {} screen numbers are in use".format(self.limit))
        n = self.first
        while n <= 9999:
            screen = "{:04d}".format(n)
            if screen not in self._used:
                self._used.add(screen)
                return screen
            n += 1
        raise ScreenError("no screen number left above {:04d}".format(self.first))

    def give_back(self, screen: str) -> None:
        self._used.discard(screen)

    def in_use(self) -> int:
        return len(self._used)


class Registration(NamedTuple):
    """One ``SetRealReg`` call to make; ``opt`` is ``"0"`` (replace) or ``"1"`` (add)."""

    screen: str
    codes: Tuple[str, ...]
    opt: str


class RealScreens:
    """Which code is registered on which screen, and the calls that change it."""

    def __init__(self, numbers: ScreenNumbers, per_screen: int = CODES_PER_SCREEN) -> None:
        self.numbers = numbers
        self.per_screen = per_screen
        self._codes: Dict[str, List[str]] = {}  # screen → codes, in registration order
        self._screen_of: Dict[str, str] = {}

    def screen_of(self, code: str) -> Optional[str]:
        return self._screen_of.get(code)

    def codes(self) -> List[str]:
        return [c for codes in self._codes.values() for c in codes]

    def screens(self) -> Dict[str, List[str]]:
        return {s: list(c) for s, c in self._codes.items()}

    def add(self, codes: Iterable[str]) -> List[Registration]:
        """Book new codes (known ones are skipped) and return the ``SetRealReg`` calls."""
        new: List[str] = []
        for code in codes:
            if code not in self._screen_of and code not in new:
                new.append(code)
        calls: List[Registration] = []
        for screen in list(self._codes):  # fill screens that have room first
            room = self.per_screen - len(self._codes[screen])
            if room > 0 and new:
                chunk, new = new[:room], new[room:]
                calls.append(self._book(screen, chunk, "1"))
        while new:
            screen = self.numbers.take()
            self._codes[screen] = []
            chunk, new = new[: self.per_screen], new[self.per_screen :]
            calls.append(self._book(screen, chunk, "0"))
        return calls

    def remove(self, codes: Iterable[str]) -> Tuple[List[Tuple[str, str]], List[str]]:
        """Unbook codes: the ``SetRealRemove(screen, code)`` calls, and screens now empty."""
        removals: List[Tuple[str, str]] = []
        emptied: List[str] = []
        for code in codes:
            screen = self._screen_of.pop(code, None)
            if screen is None:
                continue
            self._codes[screen].remove(code)
            removals.append((screen, code))
            if not self._codes[screen]:
                del self._codes[screen]
                self.numbers.give_back(screen)
                emptied.append(screen)
        return removals, emptied

    def all_registrations(self) -> List[Registration]:
        """Every screen as one ``"0"`` call: what to send again after a reconnect."""
        return [Registration(s, tuple(c), "0") for s, c in self._codes.items() if c]

    def _book(self, screen: str, chunk: List[str], opt: str) -> Registration:
        self._codes[screen].extend(chunk)
        for code in chunk:
            self._screen_of[code] = screen
        return Registration(screen, tuple(chunk), opt)
