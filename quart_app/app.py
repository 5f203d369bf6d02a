"""The app factory: settings, logging, CORS, OpenAPI, the Socket.IO server, blueprints and lifespan; and
`asgi_application`, the ASGI app as served (liveness first, then Socket.IO, then Quart)."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncGenerator

import socketio
from quart import Quart, Response, g, request
from quart_cors import cors
from quart_schema import QuartSchema

from .api.health import LIVE_BODY
from .api.monitoring import observe_request, start_request_timer
from .api.openapi_provider import ValidOpenAPIProvider
from .assistant.feature import AssistantFeature
from .calls.feature import RealtimeCalls, openai_connector, twilio_control
from .calls.speech import measured
from .features import FeatureFactory
from .logging_setup import configure_logging
from .process.serving import serving
from .resources import Resources
from .settings import Settings, secret
from .sockets.audio_stream import AudioStreamSocket
from .sockets.monitoring import MonitoringSocket, calls_figures, monitored, stream_figures
from .sockets.server import build_socketio
from .sockets.system import SystemSocket
from .sockets.voice import VoiceSocket
from .telephony import twiml
from .transcribe.jobs import JobRunner
from .version import VERSION
from .web.errors import register_error_handlers
from .web.guards import authenticate_before_body
from .web.headers import apply_security_headers, request_id
from .web.limits import LimitedASGIHTTPConnection, LimitedRequest
from .web.live import LiveAnswer, LivenessFirst
from .web.no_session import NoSession
from .web.state import DRAINER, FEATURES, RESOURCES

log = logging.getLogger(__name__)


def _jobs(resources: Resources) -> JobRunner:
    return JobRunner(resources.settings, resources.database, resources.providers, resources.billing)


def _realtime_calls(resources: Resources) -> RealtimeCalls:
    settings = resources.settings
    return RealtimeCalls(
        settings,
        resources.database,
        # Each Realtime session opened (or not) shows in the dashboard's provider status.
        connector=measured(openai_connector(settings), resources.monitoring.providers.record),
        control=twilio_control(settings, resources.http),
        apology_twiml=twiml.say_and_hang_up(twiml.APOLOGY),
        stream_twiml=twiml.connect_stream,  # where a moved or recovered call reconnects (#22)
    )


def _live_streams(resources: Resources) -> AudioStreamSocket:
    # Each Deepgram live connect (or failure) shows in the dashboard's provider status.
    return AudioStreamSocket(resources, record_provider=resources.monitoring.providers.record)


def _assistant(resources: Resources) -> AssistantFeature:
    # The assistant feature with its Socket.IO front end (sockets/voice.py registers "/voice" in start()).
    return VoiceSocket.from_resources(resources)


# app.extensions key: the LiveAnswer (api/health.py's LIVE_BODY as Quart would send it, with this app's
# headers) that asgi_application's LivenessFirst sends; tests/web/test_live_first.py compares the two.
LIVENESS = "liveness"

# The routes that accept a large body (multipart uploads); any other body is limited to MAX_JSON_KB.
UPLOAD_PATHS = re.compile(r"^/transcriptions/(deepgram|whisper|jobs)$|^/api/tenants/[^/]+/documents$")

# The features, started in this order and drained and stopped in reverse. A new feature adds its factory here.
FEATURES_ENABLED: tuple[FeatureFactory, ...] = (
    SystemSocket,
    _jobs,
    _assistant,  # before the features that use it (the /voice namespace)
    monitored(_live_streams, stream_figures),  # monitored(): also registers the feature's dashboard figures
    monitored(_realtime_calls, calls_figures),
    MonitoringSocket,
)


def create_app(settings: Settings | None = None) -> Quart:
    """Build the Quart app and its Socket.IO server. Resources open in `while_serving`, not here."""
    settings = settings or Settings.from_env()
    configure_logging(settings)
    app = Quart(__name__)
    # Only the upload routes take large bodies; every other body (JSON, Twilio forms) is capped small.
    app.request_class = LimitedRequest.for_app(UPLOAD_PATHS, settings.max_json_kb * 1024, settings.max_upload_bytes)
    app.asgi_http_class = LimitedASGIHTTPConnection  # body backpressure
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.config["JSON_SORT_KEYS"] = False
    # Time allowed to receive a whole request body: a 100 MB upload from a phone needs minutes, not 60 s.
    app.config["BODY_TIMEOUT"] = settings.upload_timeout_s
    app.secret_key = secret(settings.secret_key) or secrets.token_hex(32)
    # No route uses a cookie session: none is read, signed or set (Quart annotates the attribute with its default).
    app.session_interface = NoSession()  # type: ignore[assignment]
    if settings.cors_origins:
        # Credentials only with an explicit list: browsers reject credentialed "*" and so do we.
        wildcard = settings.cors_origins == ("*",)
        app = cors(
            app,
            allow_origin="*" if wildcard else list(settings.cors_origins),
            allow_credentials=not wildcard,
            allow_headers=["Authorization", "Content-Type", "x-api-key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )

    sio = build_socketio(settings)
    app.extensions["socketio"] = sio
    production = settings.app_env == "production"
    app.extensions[LIVENESS] = LiveAnswer.of(
        app.json.response(LIVE_BODY), production=production, cors=bool(settings.cors_origins)
    )
    secret_key = str(app.secret_key)

    @app.while_serving
    async def lifespan() -> AsyncGenerator[None, None]:
        try:
            async with serving(settings, sio, secret_key, FEATURES_ENABLED) as state:
                app.extensions[RESOURCES] = state.resources
                app.extensions[FEATURES] = state.features
                app.extensions[DRAINER] = state.drainer
                yield
        finally:  # after the drain and every feature's stop: requests until then still reach them
            for key in (RESOURCES, FEATURES, DRAINER):
                app.extensions.pop(key, None)

    @app.before_request
    async def assign_request_id() -> None:
        g.request_id = request_id(request.headers.get("X-Request-ID", ""))

    app.before_request(start_request_timer)  # /metrics times every request, refusals included
    app.before_request(authenticate_before_body)  # after the request id: refusals carry it
    app.after_request(observe_request)

    @app.after_request
    async def add_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = getattr(g, "request_id", "")
        apply_security_headers(response, production=production)
        return response

    QuartSchema(
        app,
        info={"title": "Voice backend API", "version": VERSION},
        security_schemes={
            "bearer": {"type": "http", "scheme": "bearer", "bearer_format": "JWT (Auth0) or vst_ session token"},
            "apiKey": {"type": "apiKey", "in_": "header", "name": "x-api-key"},
        },
        security=[{"bearer": []}, {"apiKey": []}],
        swagger_ui_path=None,  # pages/docs.py serves /docs without a CDN
        redoc_ui_path=None,
        scalar_ui_path=None,
        openapi_provider_class=ValidOpenAPIProvider,  # no operation without a response object
    )
    register_error_handlers(app)
    _register_blueprints(app, settings)
    log.info("app created (%s, %s)", settings.app_env, "sqlite" if settings.is_sqlite else "postgresql")
    return app


def asgi_application(app: Quart) -> LivenessFirst:
    """The ASGI app as served: `/health/live` answered first, then python-socketio's ASGIApp around `app`.

    LivenessFirst is outermost so liveness skips Engine.IO's routing too; what it adds to every other
    request (Socket.IO's included) is one comparison of the scope's type and path. ASGIApp's own
    on_startup/on_shutdown stay unset, so lifespan events reach Quart (`while_serving` opens every resource).
    """
    sio = app.extensions["socketio"]
    inner = socketio.ASGIApp(sio, other_asgi_app=app, socketio_path="socket.io")
    return LivenessFirst(inner, app.extensions[LIVENESS], app.extensions)


def _register_blueprints(app: Quart, settings: Settings) -> None:
    from .api import (
        calls,
        health,
        identity,
        jobs,
        keys,
        monitoring,
        tenants,
        todos,
        transcriptions,
        translations,
        usage,
    )
    from .pages import dashboard, docs, voice_assistant
    from .streams import audio_stream
    from .telephony import classic, media_stream, voice, webhooks

    for module in (
        health,
        identity,
        keys,
        transcriptions,
        jobs,
        translations,
        usage,
        calls,
        tenants,
        todos,
        docs,
        monitoring,
        dashboard,
        audio_stream,
    ):
        app.register_blueprint(module.blueprint)
    # Twilio and voice-assistant routes also answer under APP_ROUTE_PREFIX so old webhook URLs keep working.
    for module in (webhooks, voice, media_stream, classic, voice_assistant):
        app.register_blueprint(module.blueprint)
        if settings.app_route_prefix:
            app.register_blueprint(
                module.blueprint, url_prefix=settings.app_route_prefix, name=f"{module.blueprint.name}_prefixed"
            )
