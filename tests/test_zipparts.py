"""A zip whose large member is compressed as it comes and whose head is given last: what zip readers get back."""

from __future__ import annotations

import io
import random
import struct
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threelines.batch import zipparts
from threelines.batch.zipparts import StreamedMember, deflated, write_zip


@settings(max_examples=40, deadline=None)
@given(
    st.binary(max_size=200),
    st.lists(st.one_of(st.binary(max_size=3000), st.just(b"<row>" * 400)), max_size=8),
    st.binary(max_size=200),
    st.integers(1, 9),
)
def test_the_pieces_read_back_as_one_member(head, body, tail, level):
    out = io.BytesIO()
    with StreamedMember(level) as member:
        for piece in body:
            member.write(piece)
        write_zip(out, [member.member("a/sheet.xml", head, tail), deflated("b.xml", b"<x/>" * 50, level)])
    with zipfile.ZipFile(out) as read:
        assert read.testzip() is None  # every member's CRC-32 checks
        assert read.namelist() == ["a/sheet.xml", "b.xml"]
        assert read.read("a/sheet.xml") == head + b"".join(body) + tail
        assert read.read("b.xml") == b"<x/>" * 50
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in read.infolist())
        for info in read.infolist():  # the local headers, which streaming readers go by, say what the directory says
            fields = struct.unpack_from("<4sHHHHHIIIHH", out.getbuffer(), info.header_offset)
            assert fields[0] == b"PK\x03\x04"
            assert fields[3] == zipfile.ZIP_DEFLATED
            assert fields[6:9] == (info.CRC, info.compress_size, info.file_size)


def test_a_member_or_a_zip_past_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(zipparts, "ZIP32_LIMIT", 150)
    with pytest.raises(ValueError, match=r"^big.xml is 151 bytes at 0, more than a zip without zip64 holds$"):
        write_zip(io.BytesIO(), [deflated("big.xml", bytes(151), 1)])
    noise = deflated("a.bin", random.Random(1).randbytes(100), 1)  # its member ends past byte 130
    with pytest.raises(ValueError, match="more than a zip without zip64 holds"):
        write_zip(io.BytesIO(), [noise, deflated("b.xml", b"<x/>", 1)])
