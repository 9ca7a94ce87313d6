"""User names in home directory paths: only the name goes, the path stays."""

from __future__ import annotations

import pytest

HOME_CASES = [
    pytest.param("open /home/jdoe/.ssh/config", "open /home/[user]/.ssh/config", id="linux"),
    pytest.param("/Users/jane.doe/Library/Logs", "/Users/[user]/Library/Logs", id="macos"),
    pytest.param("cwd=/home/alice", "cwd=/home/[user]", id="no-trailing-slash"),
    pytest.param("file:///home/bob/x.txt", "file:///home/[user]/x.txt", id="file-url"),
    pytest.param(r"C:\Users\jdoe\AppData", r"C:\Users\[user]\AppData", id="windows"),
    pytest.param(
        r"C:\Users\John Smith\Documents\a.docx",
        r"C:\Users\[user]\Documents\a.docx",
        id="windows-name-with-space",
    ),
    pytest.param(r"at C:\Users\bob is here", r"at C:\Users\[user] is here", id="windows-prose"),
    pytest.param("c:/users/al/x", "c:/users/[user]/x", id="windows-forward-slashes"),
    pytest.param(r"d:\\Users\\eve\\x", r"d:\\Users\\[user]\\x", id="windows-doubled"),
    pytest.param(r"C:\Users\José\x", r"C:\Users\[user]\x", id="windows-non-ascii"),
]

HOME_NEGATIVES = [
    pytest.param("/home/", id="no-name"),
    pytest.param("/Users/Shared/x", id="shared"),
    pytest.param(r"C:\Users\Public\Desktop", id="public"),
    pytest.param(r"C:\Users\Default\NTUSER.DAT", id="default"),
    pytest.param(r"C:\Users\All Users\x", id="all-users"),
    pytest.param("https://shop.example.com/home/featured", id="url-path"),
    pytest.param("/api/v1/Users/12345", id="api-path"),
    pytest.param("/users/42/profile", id="lower-case-users"),
    pytest.param("/home/[user]/x", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), HOME_CASES)
def test_home_path_text(redact_text, text, expected):
    assert redact_text(text, "home_path") == expected


@pytest.mark.parametrize(("text", "expected"), HOME_CASES)
def test_home_path_json(redact_json, text, expected):
    # In JSON a Windows backslash is the two bytes \\ : the pattern must see through it.
    assert redact_json({"path": text}, "home_path") == {"path": expected}


@pytest.mark.parametrize("text", HOME_NEGATIVES)
def test_home_path_negatives(redact_text, redact_json, text):
    assert redact_text(text, "home_path") == text
    assert redact_json([text], "home_path") == [text]


def test_home_path_after_json_escape(redact_json):
    assert redact_json(["\n/home/eve/x", "C:\\Users\\nancy"], "home_path") == [
        "\n/home/[user]/x",
        "C:\\Users\\[user]",
    ]
