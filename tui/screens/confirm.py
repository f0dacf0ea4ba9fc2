"""Small modal dialogs: a yes/no confirmation, a one-line prompt and a pick list."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from ..actions import DIALOG, bindings


class ConfirmScreen(ModalScreen[bool]):
    """``y`` / Enter confirms, ``n`` / Esc declines."""

    BINDINGS = bindings(DIALOG)

    def __init__(self, question: str, danger: bool = True) -> None:
        super().__init__(classes="-danger" if danger else "")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            yield Label("[b]y[/b] / Enter: yes     [b]n[/b] / Esc: no", id="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt_cancel")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            yield Input(id="answer")
            yield Label("Enter: ok     Esc: cancel", id="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickScreen(ModalScreen[str | None]):
    """Pick one of several ``(code, name)``: arrows and Enter (or a click), Esc: none."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="pick_cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.question = question
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            yield OptionList(
                *(Option(f"{code}  {name}", id=code) for code, name in self.choices), id="picks"
            )
            yield Label("↑↓ Enter: add     Esc: cancel", id="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
