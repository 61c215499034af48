# SPDX-License-Identifier: AGPL-3.0-only
"""The metrics of ``mas_twisted/metrics.py`` through a whole server (issue 17 item 2)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from mas_twisted.metrics import metrics_exporter_supported
from tests.unittest import MasTestCase


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class MetricsTestCase(MasTestCase):
    def default_config(self) -> dict[str, Any]:
        config = super().default_config()
        config.setdefault("telemetry", {})["metrics"] = {"exporter": "prometheus"}
        config["http"]["listeners"].append(
            {"name": "internal", "resources": [{"name": "prometheus"}], "binds": [{"address": "[::]:8081"}]}
        )
        return config

    def test_route_template_labels_a_placeholder_route(self) -> None:
        labels = {
            "mas_listener_name": "web",
            "http_request_method": "GET",
            "http_route": "/.well-known/openid-configuration",
            "http_response_status_code": "200",
        }
        before = _value("http_server_request_duration_seconds_count", **labels)
        self.assertEqual(self.make_request("GET", "/.well-known/openid-configuration").code, 200)
        self.assertEqual(_value("http_server_request_duration_seconds_count", **labels), before + 1)

    def test_introspection_of_a_malformed_token_is_counted_inactive(self) -> None:
        handler = self.server.get_introspection_handler()
        before = _value("mas_oauth2_introspection_request_total", kind="unknown", active="false")
        reply = self.get_success(handler.introspect("not-a-token"))
        self.assertFalse(reply.active)
        self.assertEqual(
            _value("mas_oauth2_introspection_request_total", kind="unknown", active="false"), before + 1
        )

    def test_token_request_errors_are_counted(self) -> None:
        before = _value("mas_oauth2_token_request_total", grant_type="unknown", successful="error")
        channel = self.make_request(
            "POST",
            "/oauth2/token",
            form={"grant_type": "bogus", "client_id": "nobody"},
        )
        self.assertGreaterEqual(channel.code, 400)
        self.assertEqual(
            _value("mas_oauth2_token_request_total", grant_type="unknown", successful="error"), before + 1
        )

    def test_pool_usage_and_interaction_times_are_exported(self) -> None:
        self.get_success(self.server.get_db_pool().ping())
        self.assertEqual(_value("db_connections_usage", state="used"), 0.0)
        self.assertGreaterEqual(REGISTRY.get_sample_value("db_connections_max") or 0.0, 1.0)
        self.assertGreaterEqual(_value("mas_db_interaction_duration_seconds_count", desc="ping"), 1.0)

    def test_unsupported_exporters_are_refused_with_one_line(self) -> None:
        self.assertIsNone(metrics_exporter_supported(self.server.config))
        message = metrics_exporter_supported(type("M", (), {"exporter": "otlp"})())
        assert message is not None
        self.assertIn("telemetry.metrics.exporter", message)
