"""The embedded broker hands over whole messages only (kombu's filesystem transport, atomic puts)."""

from __future__ import annotations

from pathlib import Path

from kombu import Connection

from core.settings import Settings
from worker.fs_broker import Transport
from worker.transport import make_celery


def test_the_embedded_celery_app_uses_the_atomic_transport_and_round_trips(tmp_path: Path) -> None:
    app = make_celery(Settings(data_dir=tmp_path, database_url="sqlite://", secret_key="test-secret"))
    folder = tmp_path / "broker"
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, Transport)
        queue = conn.SimpleQueue("runs")
        queue.put({"run": "r1"})
        assert not list(folder.glob("*.part"))  # nothing half-written is left behind
        assert "runs.msg" in [p.name.split(".", 1)[1] for p in folder.glob("*.msg")]
        assert queue.get(timeout=1).payload == {"run": "r1"}
        queue.close()


def test_a_message_being_written_is_invisible_to_consumers(tmp_path: Path) -> None:
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path),
               "control_folder": str(tmp_path / "control")}
    (tmp_path / "1_half.runs.msg.part").write_bytes(b"")  # what a writer leaves mid-way
    with Connection("filesystem://", transport=Transport, transport_options=options) as conn:
        queue = conn.SimpleQueue("runs")
        queue.put("whole")
        assert queue.get(timeout=1).payload == "whole"
        queue.close()
