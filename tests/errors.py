"""One check shared by the error-table tests: the call raises `error` and its message holds every word."""

import pytest


def assert_raises_naming(call, error, words) -> None:
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), (word, str(info.value))
