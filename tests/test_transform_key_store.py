"""KeyStore: the transform's memory across batches answers exactly like a dict, in bounded memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ts24_migrate.core.key_store import KeyStore

_KEYS = st.sampled_from([f"k{i}" for i in range(12)])
_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _KEYS, st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("setdefault"), _KEYS, st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("add"), _KEYS, st.just("")),
        st.tuples(st.just("get"), _KEYS, st.just("")),
        st.tuples(st.just("warm"), st.lists(_KEYS, max_size=6), st.just("")),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(operations=_OPERATIONS, memory_entries=st.integers(min_value=1, max_value=5))
def test_a_small_store_answers_like_a_dict(operations, memory_entries):
    store, model = KeyStore(memory_entries=memory_entries), {}
    for operation, key, value in operations:
        if operation == "set":
            store[key] = value
            model[key] = value
        elif operation == "setdefault":
            assert store.setdefault(key, value) == model.setdefault(key, value)
        elif operation == "add":  # as a set: the value is ''
            store.add(key)
            model[key] = ""
        elif operation == "get":
            assert store.get(key) == model.get(key)
            assert (key in store) == (key in model)
        else:
            store.warm(key)  # a list of keys: the batch's
    assert dict(store.items()) == model and len(store) == len(model)
    store.close()


def test_entries_move_to_the_database_and_warmed_batches_are_answered_from_memory():
    store = KeyStore(memory_entries=1_000)
    for number in range(2_500):
        store[f"HS-{number}"] = str(number)
    assert len(store._memory) < 1_000 and store._db is not None  # most entries left the memory
    batch = [f"HS-{n}" for n in (0, 999, 2_499, 7_000)] + [None]
    store.warm(batch)
    assert store._warm == {"HS-0": "0", "HS-999": "999"}  # 2,499 is still in memory; 7,000 unknown
    assert [store.get(k) for k in batch] == ["0", "999", "2499", None, None]
    assert "HS-1500" in store and "HS-7000" not in store and None not in store  # unwarmed: one query each
    assert store == {f"HS-{n}": str(n) for n in range(2_500)}
    store.close()


def test_a_set_of_codes_compares_with_a_set():
    codes = KeyStore(memory_entries=2)
    codes.update(["01", "0101", "01"])
    codes.add("0102")
    assert codes == {"01", "0101", "0102"} and "0101" in codes and "02" not in codes


def test_a_warmed_batch_is_answered_without_a_query_after_its_entries_moved():
    store = KeyStore(memory_entries=3)
    store.update(["x1", "x2", "x3"])  # the third entry moves them all to the database
    store["a"] = "A"
    store.warm(["a", "x1", "zz"])  # a is in memory, x1 in the database, zz nowhere
    store["a"] = "A2"
    store.update(["b", "c"])  # a, b, c move too
    assert not store._memory
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    assert (store.get("a"), store.get("x1"), store.get("zz")) == ("A2", "", None)
    assert statements == []  # the batch's keys: answered from memory
    assert store.get("b") == "" and len(statements) == 1  # not the batch's: one query
    store.close()
