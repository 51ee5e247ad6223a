"""End to end over real loopback HTTP: the CLI against the reference IBR simulator."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dci import cli
from dci.keys import KeySet, SigningKey
from dci.simulator import IbrSimulator

ROOT = Path(__file__).resolve().parents[1]
DEMO = ["--id", "NID:1000000001", "--id", "NID:1000000002", "--id", "NID:1000000003"]


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rows(out):
    return {r["identifier_value"]: r for r in json.loads(out)}


@pytest.mark.parametrize("algorithm", ["ed25519", "rs256"])
@pytest.mark.parametrize("mode", [[], ["--sync"]], ids=["async", "sync"])
def test_demo_gives_every_result(capsys, algorithm, mode):
    code, out, err = run_cli(
        capsys, "check", *DEMO, "--json", "--algorithm", algorithm, *mode, "--timeout", "10"
    )
    assert code == 0, err
    results = rows(out)
    assert results["1000000001"]["result"] == "confirmed_match"
    assert results["1000000001"]["programmes"] == ["Cash Transfer Programme"]
    assert results["1000000002"]["result"] == "possible_match"
    assert results["1000000003"]["result"] == "no_match"
    assert {r["status"] for r in results.values()} == {"completed"}
    assert set(next(iter(results.values()))) == {
        "identifier_type",
        "identifier_value",
        "reference_id",
        "status",
        "result",
        "programmes",
        "reason",
    }


def test_demo_command_in_a_subprocess():
    done = subprocess.run(
        [sys.executable, "-m", "dci", "check", *DEMO],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "confirmed_match" in done.stdout and "no_match" in done.stdout
    assert "started the built-in IBR simulator" in done.stderr


def test_pages_accumulate(capsys):
    code, out, err = run_cli(
        capsys, "check", "--id", "NID:1000000004", "--page-size", "1", "--json", "--timeout", "10"
    )
    assert code == 0, err
    assert rows(out)["1000000004"]["programmes"] == [
        "Cash Transfer Programme",
        "Disability Grant",
        "Old Age Pension",
    ]


def test_batches_split_identifiers(capsys):
    ids = [a for i in range(1, 6) for a in ("--id", f"NID:100000000{i}")]
    code, out, err = run_cli(capsys, "check", *ids, "--batch-size", "2", "--json")
    assert code == 0, err
    assert err.count("sent batch") == 3
    assert len(rows(out)) == 5


@pytest.fixture
def client_key():
    return SigningKey.generate(cli.CLI_SENDER_ID)


def check_against(capsys, sim, *extra):
    return run_cli(
        capsys,
        "check",
        "--registry",
        sim.url,
        "--id",
        "NID:1000000001",
        "--json",
        "--timeout",
        "2",
        *extra,
    )


@pytest.mark.parametrize(
    "failure,reason",
    [
        ("err-ack", "err.service.unavailable"),
        ("http-500", "err.service.unavailable"),
        ("rjct", "rjct.search_criteria.invalid"),
        ("drop", "no acceptable callback"),
    ],
)
def test_failure_injection(capsys, failure, reason):
    with IbrSimulator(failures=[failure]) as sim:
        code, out, err = check_against(capsys, sim)
    row = rows(out)["1000000001"]
    assert code == 1
    assert row["status"] == "failed" and row["result"] is None
    assert reason in row["reason"]


@pytest.mark.parametrize("failure", ["bad-signature", "unsigned"])
def test_forged_and_unsigned_callbacks_refused(capsys, failure):
    with IbrSimulator(failures=[failure]) as sim:
        code, out, err = check_against(capsys, sim)
    assert code == 1
    assert "callback 1 refused" in err
    expected = "err.signature.invalid" if failure == "bad-signature" else "err.signature.missing"
    assert expected in err
    assert rows(out)["1000000001"]["result"] is None


def test_unsigned_accepted_when_allowed(capsys):
    with IbrSimulator(failures=["unsigned"]) as sim:
        code, out, err = check_against(capsys, sim, "--allow-unsigned")
    assert code == 0, err
    assert rows(out)["1000000001"]["result"] == "confirmed_match"


def test_duplicated_callbacks_apply_once(capsys):
    with IbrSimulator(failures=["duplicate"], page_size=1) as sim:
        code, out, err = run_cli(
            capsys,
            "check",
            "--registry",
            sim.url,
            "--id",
            "NID:1000000004",
            "--json",
            "--timeout",
            "5",
        )
    # three pages, each posted twice (the last copy may find the listener closed)
    assert sim.stats["callbacks_sent"] + sim.stats["callbacks_failed"] == 6
    assert sim.stats["callbacks_sent"] >= 4
    assert code == 0, err
    assert len(rows(out)["1000000004"]["programmes"]) == 3


def test_simulator_verifies_client_requests(client_key):
    from dci.client import IbrClient
    from dci.errors import PeerRejected
    from dci.messages import SearchQuery

    stranger = SigningKey.generate(cli.CLI_SENDER_ID)
    with IbrSimulator(client_jwks=KeySet([client_key.public])) as sim:
        ibr_keys = KeySet([sim.signing_key.public])
        good = IbrClient(sim.url, client_key, cli.CLI_SENDER_ID, ibr_keys=ibr_keys)
        assert good.sync_search([SearchQuery("r1", "NID", "1000000001")]).message
        bad = IbrClient(sim.url, stranger, cli.CLI_SENDER_ID, ibr_keys=ibr_keys)
        with pytest.raises(PeerRejected) as info:
            bad.sync_search([SearchQuery("r1", "NID", "1000000001")])
    assert info.value.code == "err.signature.invalid"


def test_unreachable_registry_is_one_clear_line(capsys):
    code, out, err = check_against_url(capsys, "http://127.0.0.1:9")
    assert code == 1
    assert "cannot use the registry's JWKS" in err
    assert "err.service.unavailable" in rows(out)["1000000001"]["reason"]


def check_against_url(capsys, url):
    return run_cli(
        capsys, "check", "--registry", url, "--id", "NID:1000000001", "--json", "--timeout", "1"
    )


def test_bad_identifier_is_a_usage_error(capsys):
    code, out, err = run_cli(capsys, "check", "--id", "no-colon")
    assert code == 2 and err.strip() == "error: identifier 'no-colon' is not TYPE:VALUE"


def test_jwks_and_verify_commands(capsys, tmp_path):
    with IbrSimulator(algorithm="rs256") as sim:
        code, out, _ = run_cli(capsys, "jwks", sim.jwks_url)
        assert code == 0 and sim.signing_key.kid in out and "rs256" in out
        code, _, err = run_cli(capsys, "jwks", sim.jwks_url, "--sender-id", "someone")
        assert code == 2 and "no usable key" in err
        envelope = sim.signed("on-search", {"transaction_id": "t"}, "me")
        path = tmp_path / "envelope.json"
        path.write_text(json.dumps(envelope))
        code, out, _ = run_cli(capsys, "verify", str(path), "--jwks", sim.jwks_url)
        assert code == 0 and out.startswith("valid:")
        envelope["message"]["transaction_id"] = "changed"
        path.write_text(json.dumps(envelope))
        code, out, _ = run_cli(capsys, "verify", str(path), "--jwks", sim.jwks_url)
        assert code == 1 and out.startswith("invalid: err.signature.invalid")
        other = tmp_path / "other.pem"
        other.write_text(SigningKey.generate("x", "rs256").public.pem)
        code, out, _ = run_cli(capsys, "verify", str(path), "--key", str(other))
        assert code == 1 and "invalid" in out
