# SPDX-License-Identifier: AGPL-3.0-only
"""``TokenGenerator``: MAS's samplers, lengths and alphabets, deterministic under a seed."""

from __future__ import annotations

import os
import random
import string
from collections import Counter

from ulid import ULID

from mas_twisted.types.tokens import TokenType
from mas_twisted.util.rand import OsRandom, TokenGenerator


class _Clock:
    def __init__(self, ms: int = 1_700_000_000_000):
        self.ms = ms

    def time_msec(self) -> int:
        return self.ms


def _generator(seed: int = 42, clock: _Clock | None = None) -> TokenGenerator:
    return TokenGenerator(random.Random(seed), clock or _Clock())


def test_same_seed_same_values() -> None:
    a, b = _generator(), _generator()
    assert [a.token(TokenType.ACCESS_TOKEN) for _ in range(3)] == [
        b.token(TokenType.ACCESS_TOKEN) for _ in range(3)
    ]
    assert a.ulid() == b.ulid()
    assert a.user_code() == b.user_code()
    assert _generator(1).alphanumeric(30) != _generator(2).alphanumeric(30)


def test_alphanumeric_alphabet_and_uniformity() -> None:
    sample = _generator().alphanumeric(62 * 2000)
    assert len(sample) == 62 * 2000
    counts = Counter(sample)
    assert set(counts) == set(string.ascii_letters + string.digits)
    # Rejection sampling keeps every character equally likely (2000 expected each).
    assert min(counts.values()) > 1700 and max(counts.values()) < 2300


def test_alphanumeric_uses_the_top_six_bits_of_32_bit_draws() -> None:
    # rand's Alphanumeric: draw u32, keep the top 6 bits, reject 62 and 63.
    rng = random.Random(7)
    expected = []
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits
    while len(expected) < 40:
        index = rng.getrandbits(32) >> 26
        if index < 62:
            expected.append(alphabet[index])
    assert TokenGenerator(random.Random(7), _Clock()).alphanumeric(40) == "".join(expected)


def test_ulid_carries_the_clock_time() -> None:
    clock = _Clock(1_700_000_123_456)
    generator = _generator(clock=clock)
    first = generator.ulid()
    assert len(first) == 26
    assert ULID.from_str(first).milliseconds == 1_700_000_123_456
    assert ULID.from_str(generator.ulid(at_ms=1_600_000_000_000)).milliseconds == 1_600_000_000_000
    clock.ms += 1
    later = generator.new_id()
    assert later > first


def test_codes_and_secrets_have_mas_lengths() -> None:
    generator = _generator()
    user_code = generator.user_code()
    assert len(user_code) == 6 and user_code == user_code.upper() and user_code.isalnum()
    code = generator.numeric_code()
    assert len(code) == 6 and code.isdigit()
    assert len(generator.numeric_code(8)) == 8
    assert len(generator.device_code()) == 32
    assert len(generator.authorization_code()) == 32
    assert len(generator.client_secret()) == 20
    assert len(generator.device_id()) == 10
    assert len(generator.sso_login_token()) == 32
    assert len(generator.recovery_ticket()) == 32
    assert len(generator.registration_token()) == 12


def test_numeric_codes_are_zero_padded() -> None:
    codes = {_generator(seed).numeric_code(1) for seed in range(200)}
    assert codes == set(string.digits)
    assert any(_generator(seed).numeric_code(3).startswith("0") for seed in range(200))


def test_os_random_alphanumeric_alphabet_and_uniformity() -> None:
    generator = TokenGenerator(OsRandom(), _Clock())
    sample = generator.alphanumeric(62 * 2000)
    assert len(sample) == 62 * 2000
    counts = Counter(sample)
    assert set(counts) == set(string.ascii_letters + string.digits)
    assert min(counts.values()) > 1700 and max(counts.values()) < 2300
    tokens = {generator.token(TokenType.ACCESS_TOKEN) for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(TokenType.check(t) is TokenType.ACCESS_TOKEN for t in tokens)


def test_os_random_draws_are_bounded_and_never_repeat_bytes() -> None:
    rng = OsRandom()
    for k in (1, 7, 8, 9, 32, 80, 257):
        values = [rng.getrandbits(k) for _ in range(200)]
        assert all(0 <= v < 2**k for v in values)
        assert max(values) >= 2 ** (k - 1)  # the top bit is used
    assert all(0 <= rng.random() < 1 for _ in range(1000))
    assert len({rng.randrange(10**6) for _ in range(1000)}) > 990
    # More than a buffer's worth, across a refill: all distinct 16-byte draws.
    chunks = [rng.random_bytes(16) for _ in range(3 * OsRandom.BUFFER // 16)]
    assert len(set(chunks)) == len(chunks)
    assert len(rng.random_bytes(OsRandom.BUFFER * 2)) == OsRandom.BUFFER * 2


def test_os_random_forked_child_does_not_reuse_the_parents_buffer() -> None:
    rng = OsRandom()
    rng.random_bytes(16)  # fill the buffer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next draw goes to the parent
        try:
            os.write(write, rng.random_bytes(32))
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 32)
    os.close(read)
    assert len(child) == 32
    assert child != rng.random_bytes(32)
