import socket

from concentrador.daemon import sdnotify


def test_notify_sends_datagram_to_notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        sent = sdnotify.notify("READY=1\nSTATUS=listening", environ={"NOTIFY_SOCKET": str(path)})
        assert sent is True
        assert server.recv(1024) == b"READY=1\nSTATUS=listening"


def test_notify_abstract_namespace():
    name = f"concentrador-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        assert sdnotify.notify("STOPPING=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert server.recv(64) == b"STOPPING=1"


def test_notify_without_systemd_is_noop():
    assert sdnotify.notify("READY=1", environ={}) is False


def test_notify_to_missing_socket_reports_failure(tmp_path):
    assert sdnotify.notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "nope")}) is False
