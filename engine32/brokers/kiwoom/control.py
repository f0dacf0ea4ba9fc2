"""The OpenAPI+ control: the factory that makes it, and a thin typed wrapper over ``dynamicCall``.

The broker never creates the control itself: the engine calls the factory named in
``[engine.kiwoom] control`` (``package.module:function``) and hands the object over. Anything
with a ``dynamicCall(signature, *args)`` (or one list of arguments, as ``QAxBase`` takes) and
the OCX's signals (``OnEventConnect``, ``OnReceiveTrData`` …) will do: the real
``QAxWidget`` on Windows, the fake control of the tests on Linux.
"""

import importlib
from typing import Any, Callable, List

PROG_ID = "KHOPENAPI.KHOpenAPICtrl.1"

#: The signals the broker connects to, with the argument types the OCX sends.
SIGNALS = {
    "OnEventConnect": "(int)",
    "OnReceiveTrData": "(QString,QString,QString,QString,QString,int,QString,QString,QString)",
    "OnReceiveRealData": "(QString,QString,QString)",
    "OnReceiveChejanData": "(QString,int,QString)",
    "OnReceiveMsg": "(QString,QString,QString,QString)",
    "OnReceiveConditionVer": "(int,QString)",
    "OnReceiveRealCondition": "(QString,QString,QString,QString)",
    "OnReceiveTrCondition": "(QString,QString,QString,int,int)",
}


def create_control() -> Any:
    """The real control (Windows, 32-bit Python, OpenAPI+ installed). Needs a QApplication."""
    try:
        from PyQt5.QAxContainer import QAxWidget  # only on Windows builds of PyQt5
    except ImportError as exc:
        raise RuntimeError(
            "the Kiwoom OpenAPI+ control needs PyQt5 with QAxContainer on Windows (32-bit Python); "
            "on other systems set [engine.kiwoom] control to a fake: {}".format(exc)
        ) from None
    control = QAxWidget(PROG_ID)
    if control.isNull():
        raise RuntimeError(
            "could not create {}: is Kiwoom OpenAPI+ installed and is this Python 32-bit?".format(
                PROG_ID
            )
        )
    return control


def load_factory(spec: str) -> Callable[[], Any]:
    """``"package.module:function"`` → the function."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError("a control factory is 'package.module:function', got {!r}".format(spec))
    module = importlib.import_module(module_name)
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError("{} has no callable {!r}".format(module_name, attr))
    return factory


class Control:
    """Typed calls into the OCX. Every method runs on the Qt thread and returns at once."""

    def __init__(self, ocx: Any) -> None:
        self.ocx = ocx

    def _call(self, signature: str, *args: Any) -> Any:
        if len(args) > 8:  # QAxBase.dynamicCall takes at most 8 values, or one list
            return self.ocx.dynamicCall(signature, list(args))
        return self.ocx.dynamicCall(signature, *args)

    def _str(self, signature: str, *args: Any) -> str:
        value = self._call(signature, *args)
        return "" if value is None else str(value)

    def _int(self, signature: str, *args: Any) -> int:
        value = self._call(signature, *args)
        try:
            return int(value)
        except (TypeError, ValueError):
            return 0

    def connect_signal(self, name: str, slot: Callable[..., None]) -> None:
        getattr(self.ocx, name).connect(slot)

    # -- session ---------------------------------------------------------------------------
    def comm_connect(self) -> int:
        return self._int("CommConnect()")

    def get_connect_state(self) -> int:
        return self._int("GetConnectState()")

    def get_login_info(self, tag: str) -> str:
        return self._str("GetLoginInfo(QString)", tag)

    def accounts(self) -> List[str]:
        return [a.strip() for a in self.get_login_info("ACCNO").split(";") if a.strip()]

    # -- TR --------------------------------------------------------------------------------
    def set_input_value(self, item: str, value: str) -> None:
        self._call("SetInputValue(QString, QString)", item, value)

    def comm_rq_data(self, rqname: str, trcode: str, prev_next: int, screen: str) -> int:
        return self._int(
            "CommRqData(QString, QString, int, QString)", rqname, trcode, prev_next, screen
        )

    def get_comm_data(self, trcode: str, record: str, index: int, item: str) -> str:
        return self._str("GetCommData(QString, QString, int, QString)", trcode, record, index, item)

    def get_repeat_cnt(self, trcode: str, record: str) -> int:
        return self._int("GetRepeatCnt(QString, QString)", trcode, record)

    # -- orders ----------------------------------------------------------------------------
    def send_order(
        self,
        rqname: str,
        screen: str,
        account: str,
        order_type: int,
        code: str,
        qty: int,
        price: int,
        hoga: str,
        orig_order_no: str,
    ) -> int:
        return self._int(
            "SendOrder(QString, QString, QString, int, QString, int, int, QString, QString)",
            rqname, screen, account, order_type, code, qty, price, hoga, orig_order_no,
        )  # fmt: skip

    def get_chejan_data(self, fid: int) -> str:
        return self._str("GetChejanData(int)", fid)

    # -- real-time -------------------------------------------------------------------------
    def set_real_reg(self, screen: str, codes: str, fids: str, opt: str) -> int:
        return self._int("SetRealReg(QString, QString, QString, QString)", screen, codes, fids, opt)

    def set_real_remove(self, screen: str, code: str) -> None:
        self._call("SetRealRemove(QString, QString)", screen, code)

    def get_comm_real_data(self, code: str, fid: int) -> str:
        return self._str("GetCommRealData(QString, int)", code, fid)

    def disconnect_real_data(self, screen: str) -> None:
        self._call("DisconnectRealData(QString)", screen)

    # -- reference data --------------------------------------------------------------------
    def get_master_code_name(self, code: str) -> str:
        return self._str("GetMasterCodeName(QString)", code).strip()

    def get_code_list_by_market(self, market: str) -> str:
        """';'-separated codes of a market ("0" 장내/KOSPI, "10" 코스닥), with a trailing ';'."""
        return self._str("GetCodeListByMarket(QString)", market)

    def get_master_last_price(self, code: str) -> str:
        return self._str("GetMasterLastPrice(QString)", code)

    # -- condition search ------------------------------------------------------------------
    def get_condition_load(self) -> int:
        return self._int("GetConditionLoad()")

    def get_condition_name_list(self) -> str:
        return self._str("GetConditionNameList()")

    def send_condition(self, screen: str, name: str, index: int, search: int) -> int:
        return self._int("SendCondition(QString, QString, int, int)", screen, name, index, search)

    def send_condition_stop(self, screen: str, name: str, index: int) -> None:
        self._call("SendConditionStop(QString, QString, int)", screen, name, index)
