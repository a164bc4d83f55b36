from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from techbirdsfly.cache import EntryRef
from techbirdsfly.client import client_address
from techbirdsfly.responses import cached_response

from . import cache, serializers, services
from .authentication import bearer_token
from .registrations import RegistrationThrottled
from .selectors import token_validate, user_profile
from .throttle import LoginRefused
from .tokens import token_checked


class PublicView(APIView):
    """An endpoint without authentication whose failures still answer 401 with a Bearer challenge.

    DRF turns AuthenticationFailed into 403 when a view has no authentication class to name a
    challenge; API.md wants 401 for bad credentials and tokens.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class RegisterView(PublicView):
    @extend_schema(
        request=serializers.RegisterSerializer,
        responses={
            201: serializers.UserSerializer,
            400: OpenApiResponse(),
            409: OpenApiResponse(),
            429: OpenApiResponse(description="REGISTRATION_ADDRESS_LIMIT new accounts from this address this hour."),
        },
    )
    def post(self, request: Request) -> Response:
        body = serializers.RegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            user = services.user_register(**body.validated_data, address=client_address(request))
        except DjangoValidationError as exc:
            return Response({"password": list(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
        except services.EmailTaken:
            return Response({"email": ["A user with this email already exists."]}, status=status.HTTP_409_CONFLICT)
        except (RegistrationThrottled, LoginRefused) as exc:
            raise Throttled(wait=exc.retry_after, detail=exc.detail) from None
        return Response(serializers.UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(PublicView):
    @extend_schema(
        request=serializers.LoginSerializer,
        responses={200: serializers.TokenPairSerializer, 401: OpenApiResponse(), 429: OpenApiResponse()},
    )
    def post(self, request: Request) -> Response:
        body = serializers.LoginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pair = services.user_login(**body.validated_data, address=client_address(request))
        return Response(serializers.TokenPairSerializer(pair).data)


class ValidateTokenView(PublicView):
    @extend_schema(
        request=serializers.ValidateTokenSerializer,
        responses={200: serializers.ValidTokenSerializer, 401: OpenApiResponse()},
    )
    def post(self, request: Request) -> Response:
        try:
            raw = bearer_token(request)
        except AuthenticationFailed:
            raw = None
        if raw is None:
            body = serializers.ValidateTokenSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            raw = body.validated_data.get("token")
        record, from_cache = token_validate(raw_token=raw) if raw else (None, False)
        if record is None:
            return Response(
                {"valid": False, "detail": "Invalid, expired or revoked token."},
                status=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": self.get_authenticate_header(request)},
            )
        return Response({"valid": True, "userId": record["userId"], "email": record["email"], "fromCache": from_cache})


class RefreshView(PublicView):
    @extend_schema(
        request=serializers.RefreshSerializer,
        responses={200: serializers.TokenPairSerializer, 401: OpenApiResponse()},
    )
    def post(self, request: Request) -> Response:
        body = serializers.RefreshSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        raw = body.validated_data["refreshToken"]
        if not token_checked(raw):  # made up or mistyped: no need to look it up
            raise AuthenticationFailed("Invalid refresh token.")
        pair = services.token_refresh(refresh_token=raw)
        return Response(serializers.TokenPairSerializer(pair).data)


class LogoutView(APIView):
    @extend_schema(request=None, responses={200: serializers.MessageSerializer, 401: OpenApiResponse()})
    def post(self, request: Request) -> Response:
        services.token_logout(pair=request.auth.pair)
        return Response({"message": "Logged out"})


class PasswordView(APIView):
    @extend_schema(
        request=serializers.PasswordChangeSerializer,
        responses={200: serializers.TokenPairSerializer, 400: OpenApiResponse(), 429: OpenApiResponse()},
    )
    def post(self, request: Request) -> Response:
        body = serializers.PasswordChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pair = services.password_change(
            user_id=request.user.pk,
            current_password=body.validated_data["currentPassword"],
            new_password=body.validated_data["newPassword"],
            address=client_address(request),
        )
        return Response(serializers.TokenPairSerializer(pair).data)


class MeView(APIView):
    @staticmethod
    def cache_entries() -> list[EntryRef]:
        return [cache.own_profile_entry()]

    @extend_schema(responses={200: serializers.CachedProfileSerializer, 401: OpenApiResponse()})
    def get(self, request: Request) -> Response:
        return cached_response(user_profile(user_id=request.user.pk))
