"""ftops's Azure deployments (``ftops.providers.deployments``) through the real
``CognitiveServicesManagementClient`` and the real ``DefaultAzureCredential``, whose tokens the
emulator serves as App Service's managed identity endpoint (``ftops.emulator.entra``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from conftest import loopback_http_client, make_chat_jsonl

from ftops.emulator import Emulator
from ftops.errors import ExitCode, RemoteError, UsageError
from ftops.spec import Provider
from ftops.state import Deployment

pytest.importorskip("azure.identity")
pytest.importorskip("azure.mgmt.cognitiveservices")
from azure.core.credentials import AccessToken

from ftops.providers import deployments
from ftops.providers.deployments import Deployments

BASE = "gpt-4.1-2025-04-14"
SUB, RG, ACCOUNT = "00000000-0000-0000-0000-000000000001", "rg-ftops", "acct"
# Variables azure-identity reads that would send DefaultAzureCredential elsewhere first.
_OTHER_SOURCES = ("IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET",
                  "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
                  "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE",
                  "AZURE_USERNAME", "AZURE_PASSWORD")


def _provider(url: str) -> Provider:
    return Provider(name="az", type="azure", base_url=None, endpoint=url, api_version=None,
                    api_key_env=None, file="ftops.yaml", line=1, auth="entra",
                    subscription=SUB, resource_group=RG, account=ACCOUNT, management_url=url)


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(flavor="azure", job_seconds=0.4) as emu:
        for name in _OTHER_SOURCES:
            monkeypatch.delenv(name, raising=False)
        for name, value in emu.entra_environment().items():
            monkeypatch.setenv(name, value)
        yield emu


def _deployments(emu: Emulator) -> Deployments:
    return Deployments(_provider(emu.management_url), deployments.credential(),
                       polling_interval=0.02)


def _fine_tune(emu: Emulator) -> str:
    client = openai.OpenAI(base_url=emu.azure_v1_url, api_key="k", max_retries=0,
                           http_client=loopback_http_client())
    training = client.files.create(file=("t.jsonl", make_chat_jsonl()), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=training.id,
                                         extra_body={"trainingType": "Standard"})
    while (done := client.fine_tuning.jobs.retrieve(job.id)).status != "succeeded":
        pass
    assert done.fine_tuned_model is not None
    return done.fine_tuned_model


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "azure.core" not in text and "<" not in text
    return text


def test_create_waits_until_succeeded_then_get_list_delete(azure: Emulator) -> None:
    account, model = _deployments(azure), _fine_tune(azure)
    made = account.create("bot", model, "GlobalStandard", 2)
    assert made == Deployment("bot", model, "globalstandard", 2, "Succeeded", "az")
    puts = [e for e in azure.requests() if e["method"] == "PUT"]
    assert [e["status"] for e in puts] == [201]
    assert any("operationResults" in e["path"] for e in azure.requests())  # it polled

    assert account.get("bot") == made
    assert account.get("nobody") is None
    assert account.list() == (made,)
    account.delete("bot")
    assert account.get("bot") is None
    assert account.list() == ()
    account.delete("bot")  # already gone: ARM's 204, and no error


def test_create_without_wait_returns_what_azure_accepted(azure: Emulator) -> None:
    account, model = _deployments(azure), _fine_tune(azure)
    accepted = account.create("later", model, "developer", 1, wait=False)
    assert (accepted.name, accepted.sku, accepted.state) == ("later", "developer", "Creating")
    assert not any("operationResults" in e["path"] for e in azure.requests())


def test_list_reads_every_page(azure: Emulator) -> None:
    account, model = _deployments(azure), _fine_tune(azure)
    names = [f"bot-{i:02}" for i in range(23)]  # the emulator pages at 20
    for name in names:
        account.create(name, model, "standard", 1, wait=False)
    listed = account.list()
    assert sorted(d.name for d in listed) == names
    assert {(d.model, d.sku, d.capacity, d.provider) for d in listed} == {
        (model, "standard", 1, "az")}
    lists = [e for e in azure.requests()
             if e["method"] == "GET" and e["path"].endswith("/deployments")]
    assert len(lists) == 2  # the second page through nextLink


def test_an_undeployable_model_is_one_line_with_arms_code(azure: Emulator) -> None:
    account = _deployments(azure)
    unknown = f"{BASE}.ft-0123456789abcdef0123456789abcdef"
    with pytest.raises(RemoteError) as caught:
        account.create("bot", unknown, "standard", 1)
    text = _one_line(caught.value)
    assert text.startswith(f"Azure account {ACCOUNT}: deploying {unknown} as bot: "
                           "DeploymentModelNotSupported: The model 'Format:OpenAI,")
    assert caught.value.exit_code == ExitCode.ERROR
    assert account.list() == ()


def test_bad_sku_or_capacity_is_refused_before_any_call(azure: Emulator) -> None:
    account = _deployments(azure)
    for sku, capacity, words in (("premium", 1, "unknown deployment sku premium"),
                                 ("standard", 0, "at least 1")):
        with pytest.raises(UsageError, match=words):
            account.create("bot", "m", sku, capacity)
    assert not [e for e in azure.requests() if e["method"] == "PUT"]


def test_no_token_is_one_line_with_a_sign_in_hint(azure: Emulator,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-emulators-secret-header")
    account = _deployments(azure)
    with pytest.raises(RemoteError) as caught:
        account.list()
    text = _one_line(caught.value)
    assert text.startswith(f"Azure account {ACCOUNT}: listing deployments: ")
    assert "sign in to Azure" in text and "not-the-emulators-secret-header" not in text
    assert azure.requests() == []  # nothing reached ARM without a token


class _StaticToken:
    """A credential handing out one token (the TokenCredential protocol), for a token the
    management plane refuses."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, 4_102_444_800)


def test_a_refused_token_is_one_line_and_never_shown(azure: Emulator) -> None:
    secret = "not-an-entra-token-0123456789abcdef"
    account = Deployments(_provider(azure.management_url), _StaticToken(secret))
    with pytest.raises(RemoteError) as caught:
        account.get("bot")
    text = _one_line(caught.value)
    assert "reading deployment bot: InvalidAuthenticationToken: " in text
    assert secret not in text and "sign in to Azure" in text


def test_https_is_relaxed_for_loopback_only() -> None:
    for url in ("http://127.0.0.1:8080", "http://localhost", "http://[::1]:1/x"):
        assert deployments.is_loopback(url)
    for url in ("https://management.azure.com", "http://127.0.0.1.example.com",
                "http://10.0.0.1", "http://localhost.evil.test"):
        assert not deployments.is_loopback(url)


def test_a_non_loopback_http_url_is_refused_before_any_token_is_sent() -> None:
    with pytest.raises(UsageError) as caught:
        Deployments(_provider("http://arm.example.test"), _StaticToken("tok-secret-1234"))
    assert _one_line(caught.value) == (
        "provider az: management_url http://arm.example.test must be https (plain http only to "
        "this machine), as tokens are sent to it")


class _FailingArm(BaseHTTPRequestHandler):
    """ARM accepting a create whose operation then fails, as Azure reports one."""

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        host = f"http://{self.headers['Host']}"
        self._send(201, {"name": "bot", "sku": {"name": "Standard", "capacity": 1},
                         "properties": {"provisioningState": "Creating"}},
                   {"Azure-AsyncOperation": f"{host}/operations/op1?api-version=1"})

    def do_GET(self) -> None:
        self._send(200, {"status": "Failed", "error": {
            "code": "InternalServerError", "message": "The deployment could not be made."}})

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_failed_deployment_names_it_with_azures_message() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FailingArm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        account = Deployments(_provider(url), _StaticToken("t"), polling_interval=0)
        with pytest.raises(RemoteError) as caught:
            account.create("bot", "m", "standard", 1)
    finally:
        server.shutdown()
        server.server_close()
    assert _one_line(caught.value) == (f"Azure account {ACCOUNT}: deploying m as bot: "
                                       "InternalServerError: The deployment could not be made.")


def test_missing_settings_and_missing_extra_are_one_line_usage_errors() -> None:
    with pytest.raises(UsageError, match="provider az: Azure deployments need resource_group, "
                                         "account"):
        Deployments(replace(_provider("http://127.0.0.1"), resource_group=None, account=None),
                    _StaticToken("t"))
    missing = deployments.missing_extra()
    assert isinstance(missing, UsageError) and missing.exit_code == ExitCode.ERROR
    assert _one_line(missing) == (
        "Azure deployments need the azure extra (azure-identity, azure-mgmt-cognitiveservices),"
        " which is not installed (pip install 'ftops[azure]')")
