# SPDX-License-Identifier: AGPL-3.0-only
"""``mas-cli syn2mas`` and the seed's ``syn2mas`` command lines: where the flags may stand and
how the seed's flags map onto MAS's."""

from __future__ import annotations

from pathlib import Path

import pytest

from mas_twisted.cli.main import build_parser
from mas_twisted.cli.syn2mas import build_seed_parser
from tests.cli._helpers import mas_cli


def test_global_flags_before_or_after_the_subcommand() -> None:
    args = build_parser().parse_args(
        [
            "-c",
            "a.yaml",
            "syn2mas",
            "--synapse-config",
            "hs.yaml",
            "-c",
            "b.yaml",
            "migrate",
            "--synapse-config",
            "more.yaml",
            "--dry-run",
            "-c",
            "c.yaml",
            "--ignore-missing-auth-providers",
        ]
    )
    assert args.config_files == ["a.yaml", "b.yaml", "c.yaml"]
    assert args.synapse_config_files == ["hs.yaml", "more.yaml"]
    assert args.syn2mas_command == "migrate" and args.dry_run and args.ignore_missing_auth_providers


def test_the_subcommand_is_required_and_synapse_config_too(tmp_path: Path) -> None:
    assert mas_cli("syn2mas", cwd=tmp_path).returncode == 2
    out = mas_cli("syn2mas", "check", cwd=tmp_path)
    assert out.returncode == 1 and "--synapse-config" in out.stderr


@pytest.mark.parametrize(
    ("argv", "dry_run"),
    [(["--dryRun"], True), (["--dryRun", "true"], True), (["--dryRun", "false"], False), ([], False)],
)
def test_seed_dry_run_forms(argv: list[str], dry_run: bool) -> None:
    args = build_seed_parser().parse_args(
        ["--command", "migrate", "--synapseConfigFile", "hs.yaml", "--masConfigFile", "c.yaml", *argv]
    )
    assert args.dry_run is dry_run


def test_seed_provider_mapping() -> None:
    args = build_seed_parser().parse_args(
        [
            "--command=migrate",
            "--synapseConfigFile=hs.yaml",
            "--upstreamProviderMapping",
            "oidc-google:01H8PKNWKKRPCBW4YGH1RWV279",
        ]
    )
    assert args.provider_mapping == [("oidc-google", "01H8PKNWKKRPCBW4YGH1RWV279")]
    with pytest.raises(SystemExit):
        build_seed_parser().parse_args(
            ["--command=migrate", "--synapseConfigFile=x", "--upstreamProviderMapping=x"]
        )
