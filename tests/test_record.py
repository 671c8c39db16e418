"""``_record.record`` against ``dataclasses.dataclass``: the same constructor,
defaults, repr, equality, hashing, frozen and slotted instances and
``replace``, on classes shaped like the ones the hot modules declare."""

import dataclasses

import pytest

from fastdicom import _record, dimse, expert, pdu


def both(eq=True, frozen=False, slots=False):
    """The same class made by each decorator."""
    def make(decorate, fld):
        class Sample:
            """A sample."""

            id: int
            name: str | None
            items: list = fld(default_factory=list)
            count: int = 0
            other: object = None

            def total(self):
                return self.count + len(self.items)
        return decorate(eq=eq, frozen=frozen, slots=slots)(Sample)
    return make(_record.record, _record.field), make(dataclasses.dataclass, dataclasses.field)


def outcome(f):
    try:
        return "ok", f()
    except Exception as e:  # noqa: BLE001 - the kind of failure is the outcome
        return "raised", type(e)


@pytest.mark.parametrize("eq, frozen, slots", [(True, False, False), (False, False, False), (True, True, False),
                                               (True, False, True), (False, False, True)])
def test_same_as_dataclasses(eq, frozen, slots):
    R, D = both(eq, frozen, slots)
    for args, kw in (((1, "a"), {}), ((2, None), {"count": 3}), ((3, "c", [1]), {"other": "x"})):
        r, d = R(*args, **kw), D(*args, **kw)
        assert repr(r) == repr(d)
        assert r.total() == d.total()
        assert (r == R(*args, **kw)) == (d == D(*args, **kw))
        assert (r == R(9, "z")) == (d == D(9, "z"))
        assert (r.__eq__(d) is NotImplemented) == (d.__eq__(r) is NotImplemented)
        assert (R.__hash__ is None) == (D.__hash__ is None)
        assert outcome(lambda: hash(r) == hash(R(*args, **kw))) == outcome(lambda: hash(d) == hash(D(*args, **kw)))
        assert hasattr(r, "__dict__") == hasattr(d, "__dict__")
        if frozen:
            with pytest.raises(AttributeError):
                r.count = 5
            with pytest.raises(AttributeError):
                del r.count
        else:
            r.count = 5
            assert r.count == 5
        assert repr(_record.replace(r, count=7)) == repr(dataclasses.replace(d, count=7))
    assert R(1, "a").items is not R(1, "a").items  # a list made per instance
    with pytest.raises(TypeError):
        R(1)
    with pytest.raises(TypeError):
        R(1, "a", nope=2)
    assert R.__name__ == D.__name__ and R.__doc__ == D.__doc__ and R.__module__ == D.__module__


def test_repr_of_a_cycle():
    R, D = both()
    r, d = R(1, "a"), D(1, "a")
    r.other, d.other = r, d
    assert repr(r) == repr(d) == "test_same_as_dataclasses.<locals>.make.<locals>.Sample(" \
        "id=1, name='a', items=[], count=0, other=...)".replace("test_same_as_dataclasses", "both")


def test_field_order_is_checked():
    with pytest.raises(TypeError):
        @_record.record
        class Bad:
            a: int = 0
            b: int


def test_the_hot_modules_records():
    """(They kept their behaviour: a frozen expert info, slotted commands.)"""
    info = expert.make("dicom.assoc.reject", result="r", source="s", reason="x")
    with pytest.raises(AttributeError):
        info.frame = 3
    assert _record.replace(info, frame=3).frame == 3 and hash(info) == hash(_record.replace(info))
    cmd = dimse.Command()
    assert not hasattr(cmd, "__dict__") and cmd.elements == {} and cmd.elements is not dimse.Command().elements
    a = pdu.AAssociate(True, 1, b"A" * 16, b"B" * 16)
    assert a == pdu.AAssociate(True, 1, b"A" * 16, b"B" * 16) and a.user_info is not pdu.AAssociate(
        True, 1, b"", b"").user_info
    with pytest.raises(TypeError):
        hash(a)
