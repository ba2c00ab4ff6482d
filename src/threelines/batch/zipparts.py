"""A zip file whose large member is compressed while it is written, though its first bytes come last.

A workbook's sheet starts with its size (the ``dimension`` of
:mod:`threelines.batch.xlsx`), known only once its last row is written.
:class:`StreamedMember` compresses the rows as they come, and its head and
tail at the end, each as a raw deflate stream ended by a sync flush, so that
the three streams together make one (as parallel compressors join theirs):
the end of a batch then only compresses a few bytes. The plain bytes are kept
too, in a temporary file, for the CRC-32, which must run over the head first.
:func:`write_zip` writes the members (ZIP 2.0: deflate, no data descriptors,
no zip64: a member or a file past 2 GiB is refused, as Python's own writer refuses it).
"""

from __future__ import annotations

import struct
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import BinaryIO

#: The largest member (plain or compressed) and offset written: 2 GiB - 1, as Python's own zip writer allows
#: without zip64 (some readers take these fields as signed).
ZIP32_LIMIT = 0x7FFFFFFF

#: Bytes read at a time from the temporary files.
_BLOCK = 1 << 20


@dataclass
class Member:
    """A zip member ready to write: its name, CRC-32, sizes, and its compressed bytes (in pieces)."""

    name: str
    crc: int
    size: int
    packed_size: int
    packed: Iterable[bytes]


def deflated(name: str, data: bytes, level: int) -> Member:
    """A small member, compressed whole."""
    packed = _packed(data, level, zlib.Z_FINISH)
    return Member(name, zlib.crc32(data), len(data), len(packed), [packed])


class StreamedMember:
    """A member whose body is compressed as it is written, and whose head and tail are given at the end.

    Use as a context manager (the temporary files are removed on exit).
    """

    def __init__(self, level: int) -> None:
        self.level = level
        self._packer = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._plain = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self._packed = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.size = 0

    def __enter__(self) -> StreamedMember:
        return self

    def __exit__(self, *exc) -> None:
        self._plain.close()
        self._packed.close()

    def write(self, data: bytes) -> None:
        """Add bytes to the body."""
        self._plain.write(data)
        self._packed.write(self._packer.compress(data))
        self.size += len(data)

    def member(self, name: str, head: bytes, tail: bytes) -> Member:
        """The member ``head + body + tail``, its body's compression ended here (once: the body is then closed).

        Its pieces are read from the temporary files: write it before leaving the ``with`` block.
        """
        self._packed.write(self._packer.flush(zlib.Z_SYNC_FLUSH))  # byte-aligned, not the last block
        packed_head = _packed(head, self.level, zlib.Z_SYNC_FLUSH)
        packed_tail = _packed(tail, self.level, zlib.Z_FINISH)
        crc = zlib.crc32(head)
        for block in _blocks(self._plain):
            crc = zlib.crc32(block, crc)
        crc = zlib.crc32(tail, crc)
        body = self._packed.tell()
        pieces = chain([packed_head], _blocks(self._packed), [packed_tail])
        return Member(name, crc, len(head) + self.size + len(tail), len(packed_head) + body + len(packed_tail), pieces)


def _packed(data: bytes, level: int, end: int) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(end)


def _blocks(fh: BinaryIO) -> Iterator[bytes]:
    fh.seek(0)
    while block := fh.read(_BLOCK):
        yield block


def write_zip(fh: BinaryIO, members: Iterable[Member]) -> None:
    """Write a zip file of deflated members into ``fh`` (open for writing, at its start).

    Raises
    ------
    ValueError
        If a member, or the file, is past :data:`ZIP32_LIMIT` (2 GiB, no zip64).
    """
    stamp = time.localtime()
    date = (max(stamp.tm_year, 1980) - 1980) << 9 | stamp.tm_mon << 5 | stamp.tm_mday
    clock = stamp.tm_hour << 11 | stamp.tm_min << 5 | stamp.tm_sec // 2
    directory, offset = [], 0
    for member in members:
        if max(member.size, member.packed_size, offset) > ZIP32_LIMIT:
            raise ValueError(
                f"{member.name} is {member.size:,} bytes at {offset:,}, more than a zip without zip64 holds"
            )
        name = member.name.encode("ascii")
        # version needed 2.0, no flags, deflate
        fields = struct.pack("<HHHHHIII", 20, 0, 8, clock, date, member.crc, member.packed_size, member.size)
        fh.write(b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name)
        for piece in member.packed:
            fh.write(piece)
        directory.append(
            b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, offset)
            + name
        )  # fmt: skip
        offset += 30 + len(name) + member.packed_size
    if offset > ZIP32_LIMIT:
        raise ValueError(f"the members come to {offset:,} bytes, more than a zip without zip64 holds")
    central = b"".join(directory)
    fh.write(central)
    fh.write(b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(directory), len(directory), len(central), offset, 0))
