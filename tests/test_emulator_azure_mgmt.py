"""Azure's management plane (deployments) through the real ``CognitiveServicesManagementClient``
and a real azure-identity credential whose tokens the emulator serves (``ftops.emulator.entra``);
and the v1 chat that answers only for deployments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from conftest import loopback_http_client, make_chat_jsonl, raw_request

from ftops.emulator import Emulator
from ftops.emulator.entra import CALL_OPTIONS

identity = pytest.importorskip("azure.identity")
mgmt = pytest.importorskip("azure.mgmt.cognitiveservices")
from azure.core.exceptions import HttpResponseError  # noqa: E402 (after the skips)
from azure.mgmt.cognitiveservices import models as arm  # noqa: E402

BASE = "gpt-4.1-2025-04-14"
SUB, RG, ACCOUNT = "00000000-0000-0000-0000-000000000001", "rg-ftops", "acct"
OPTS: dict[str, Any] = {"polling_interval": 0, **CALL_OPTIONS}


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(flavor="azure", job_seconds=0.4) as emu:
        for name in ("IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)
        for name, value in emu.entra_environment().items():
            monkeypatch.setenv(name, value)
        yield emu


def _mgmt(emu: Emulator, **options: Any) -> Any:
    credential = identity.ManagedIdentityCredential()
    return mgmt.CognitiveServicesManagementClient(credential, SUB, base_url=emu.management_url,
                                                  **options)


def _body(name: str, version: str, sku: str = "GlobalStandard") -> Any:
    return arm.Deployment(
        sku=arm.Sku(name=sku, capacity=1),
        properties=arm.DeploymentProperties(
            model=arm.DeploymentModel(format="OpenAI", name=name, version=version)),
    )


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


def test_deploy_get_list_delete_with_the_real_clients(azure: Emulator) -> None:
    client = _mgmt(azure)
    model = _fine_tune(azure)
    poller = client.deployments.begin_create_or_update(RG, ACCOUNT, "bot", _body(model, "1"),
                                                       **OPTS)
    deployed = poller.result()
    assert deployed.properties.provisioning_state == "Succeeded"
    assert (deployed.name, deployed.sku.name, deployed.properties.model.name) == (
        "bot", "GlobalStandard", model)
    assert deployed.id.endswith(f"/accounts/{ACCOUNT}/deployments/bot")
    creating = [e for e in azure.requests() if e["method"] == "PUT"]
    assert [e["status"] for e in creating] == [201]
    assert any("operationResults" in e["path"] for e in azure.requests())
    assert client.deployments.get(RG, ACCOUNT, "bot", **CALL_OPTIONS).name == "bot"

    chat = openai.OpenAI(base_url=azure.azure_v1_url, api_key="k", max_retries=0,
                         http_client=loopback_http_client())
    reply = chat.chat.completions.create(model="bot",
                                         messages=[{"role": "user", "content": "Question 3?"}])
    assert reply.choices[0].message.content == "Answer 3."
    with pytest.raises(openai.NotFoundError) as caught:
        chat.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "DeploymentNotFound"
    with pytest.raises(openai.ConflictError):
        chat.models.delete(model)

    azure.job_seconds = 0  # provisioning was followed above; these only fill pages
    for index in range(21):  # more than a page: the client follows nextLink
        client.deployments.begin_create_or_update(
            RG, ACCOUNT, f"base-{index}", _body("gpt-4.1", "2025-04-14", "Standard"), **OPTS
        ).result()
    names = [d.name for d in client.deployments.list(RG, ACCOUNT, **CALL_OPTIONS)]
    assert len(names) == 22 and names[0] == "bot"
    client.deployments.begin_delete(RG, ACCOUNT, "bot", **OPTS).result()
    with pytest.raises(HttpResponseError) as missing:
        client.deployments.get(RG, ACCOUNT, "bot", **CALL_OPTIONS)
    assert missing.value.status_code == 404
    assert chat.models.delete(model).deleted


def test_undeployable_models_and_skus_are_arm_errors(azure: Emulator) -> None:
    client = _mgmt(azure)
    for name, version, sku, code in (
        (f"{BASE}.ft-0123456789abcdef0123456789abcdef", "1", "Standard",
         "DeploymentModelNotSupported"),
        ("gpt-4.1", "2099-01-01", "Standard", "DeploymentModelNotSupported"),
        ("gpt-4.1", "2025-04-14", "Premium", "InvalidResourceProperties"),
    ):
        with pytest.raises(HttpResponseError) as caught:
            client.deployments.begin_create_or_update(RG, ACCOUNT, "x", _body(name, version, sku),
                                                      **OPTS)
        assert (caught.value.status_code, caught.value.error.code) == (400, code)


def test_management_plane_wants_an_entra_token(azure: Emulator) -> None:
    url = (f"{azure.management_url}/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
           f"Microsoft.CognitiveServices/accounts/{ACCOUNT}/deployments?api-version=2025-09-01")
    cases = [({}, "AuthenticationFailed"), ({"api-key": "k"}, "AuthenticationFailed"),
             ({"Authorization": "Bearer data-plane-key"}, "InvalidAuthenticationToken")]
    for headers, code in cases:
        raw = raw_request(url, headers=headers)
        assert (raw.status, raw.json()) == (401, {"error": {"code": code,
                                                            "message": raw.json()["error"]
                                                            ["message"]}})
    token = identity.ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    assert raw_request(url, headers={"Authorization": f"Bearer {token.token}"}).status == 200
    # Without enforce_https=False azure-core refuses to send the token over http. It raises
    # the refusal before sending; only its retry policy's back-off (4.8 s in all) would
    # come between, so the client is made without retries.
    with pytest.raises(Exception, match="non-TLS"):
        list(_mgmt(azure, retry_total=0).deployments.list(RG, ACCOUNT))
