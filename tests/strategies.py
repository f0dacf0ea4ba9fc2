"""Hypothesis strategies shared by the parser's unit tests and the engine's junk tests."""

from hypothesis import strategies as st

#: Any JSON value, nested a little.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

#: The field names a command may carry, plus one it may not.
field_names = st.sampled_from(
    [
        "id",
        "cmd",
        "ts",
        "ttl_ms",
        "code",
        "qty",
        "price",
        "type",
        "order_id",
        "codes",
        "cancel_open",
        "client",
        "x",
    ]
)
