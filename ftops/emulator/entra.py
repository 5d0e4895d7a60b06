"""Microsoft Entra tokens for the management plane, served by the emulator itself.

The emulator plays App Service's managed identity endpoint, the one source of tokens in
azure-identity 1.27 that talks plain http to a local port: ``ManagedIdentityCredential()`` (and
``DefaultAzureCredential``, which tries it) uses it when ``IDENTITY_ENDPOINT`` and
``IDENTITY_HEADER`` are set (azure/identity/_credentials/app_service.py and msal 1.39's
``_obtain_token_on_app_service``: ``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...``
with header ``X-IDENTITY-HEADER``, answered ``{"access_token", "expires_on", "resource",
"token_type"}``, ``expires_on`` in epoch seconds). Leave ``IMDS_ENDPOINT`` and
``IDENTITY_SERVER_THUMBPRINT`` unset, or msal picks Azure Arc or Service Fabric instead.

The real ``CognitiveServicesManagementClient(credential, subscription_id, base_url=emu.url)``
(azure-mgmt-cognitiveservices 14.1) then works against ``http://127.0.0.1``, given
``enforce_https=False`` on every operation: azure-core 1.41's ``BearerTokenCredentialPolicy``
refuses to send a token to a non-https URL unless that per-operation option is False
(``_enforce_https`` in azure/core/pipeline/policies/_authentication.py), and the LRO poller
passes an operation's keyword arguments on to its polling requests. ``CALL_OPTIONS`` holds it::

    env = emu.entra_environment()              # IDENTITY_ENDPOINT, IDENTITY_HEADER
    client = CognitiveServicesManagementClient(ManagedIdentityCredential(), SUB,
                                               base_url=emu.management_url)
    client.deployments.begin_create_or_update(RG, ACCOUNT, NAME, body, polling_interval=0,
                                              **CALL_OPTIONS).result()

Tokens are opaque strings the emulator issued in this run (not JWTs); the management plane
accepts only those, for an hour of wall time, and never a data-plane api-key.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from werkzeug.wrappers import Request

TOKEN_PATH = "/_emulator/entra/token"
CALL_OPTIONS: dict[str, Any] = {"enforce_https": False}
LIFETIME = 3600


class Entra:
    """Issues tokens (the identity endpoint) and tells the ones it issued."""

    def __init__(self) -> None:
        self.header = secrets.token_hex(16)  # IDENTITY_HEADER: the endpoint's own secret
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()

    def environment(self, root_url: str) -> dict[str, str]:
        """The variables that point ``ManagedIdentityCredential`` at this emulator."""
        return {"IDENTITY_ENDPOINT": root_url + TOKEN_PATH, "IDENTITY_HEADER": self.header}

    def issue(self, request: Request) -> tuple[int, dict[str, Any]]:
        """(status, body) of the identity endpoint's answer, App Service's shape."""
        resource = request.args.get("resource", "")
        if request.headers.get("X-IDENTITY-HEADER") != self.header:
            return 401, {"statusCode": 401, "message": "Unauthorized: X-IDENTITY-HEADER."}
        if not resource:
            return 400, {"statusCode": 400, "message": "The resource parameter is required."}
        token = "ftops-entra." + secrets.token_urlsafe(24)
        expires = int(time.time()) + LIFETIME  # wall time: the credential compares with it
        with self._lock:
            self._issued[token] = expires
        return 200, {"access_token": token, "expires_on": str(expires), "resource": resource,
                     "token_type": "Bearer", "client_id": "ftops-emulator"}

    def valid(self, token: str) -> bool:
        with self._lock:
            expires = self._issued.get(token)
        return expires is not None and expires > time.time()
