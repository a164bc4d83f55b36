from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from techbirdsfly.cache import EntryRef
from techbirdsfly.paging import PageQuerySerializer
from techbirdsfly.responses import cached_response

from . import cache, selectors, serializers, services
from .money import month_start

NOT_FOUND = OpenApiResponse(description="No such account, or one the caller may not see.")
STAFF_ONLY = OpenApiResponse(description="The caller is not staff.")
CONFLICT = OpenApiResponse(description="Nothing to do: no unbilled usage, or the invoice is already paid.")
BAD_REQUEST = OpenApiResponse(description="Invalid body or query; the answer names the field.")


class AccountListView(APIView):
    @extend_schema(
        operation_id="billing_accounts_list",
        parameters=[PageQuerySerializer],
        responses={200: serializers.CachedAccountPageSerializer, 400: BAD_REQUEST},
    )
    def get(self, request: Request) -> Response:
        query = PageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return cached_response(selectors.account_list(viewer=request.user, **query.validated_data))

    @extend_schema(
        request=serializers.AccountCreateSerializer,
        responses={
            201: serializers.AccountSerializer,
            400: BAD_REQUEST,
            409: OpenApiResponse(description="The caller has BILLING_ACCOUNT_LIMIT accounts already."),
        },
    )
    def post(self, request: Request) -> Response:
        body = serializers.AccountCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = services.account_create(owner=request.user, **body.validated_data)
        return Response(serializers.account_data(account), status=status.HTTP_201_CREATED)


class SummaryView(APIView):
    @staticmethod
    def cache_entries(account_id: int) -> list[EntryRef]:
        return [cache.summary_entry(account_id)]

    @extend_schema(responses={200: serializers.CachedSummarySerializer, 404: NOT_FOUND})
    def get(self, request: Request, account_id: int) -> Response:
        return cached_response(selectors.account_summary(account_id=account_id, viewer=request.user))


class UsageCreateView(APIView):
    @extend_schema(
        request=serializers.UsageCreateSerializer,
        responses={201: serializers.UsageRecordSerializer, 400: BAD_REQUEST, 404: NOT_FOUND},
    )
    def post(self, request: Request) -> Response:
        body = serializers.UsageCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        record = services.usage_record_create(viewer=request.user, **body.validated_data)
        return Response(serializers.usage_record_data(record), status=status.HTTP_201_CREATED)


class UsageView(APIView):
    @staticmethod
    def cache_entries(account_id: int) -> list[EntryRef]:
        return [cache.usage_entry(account_id, f"{month_start(timezone.now()):%Y-%m}")]

    @extend_schema(responses={200: serializers.CachedMonthUsageSerializer, 404: NOT_FOUND})
    def get(self, request: Request, account_id: int) -> Response:
        return cached_response(selectors.account_usage(account_id=account_id, viewer=request.user))


class InvoicesView(APIView):
    def get_permissions(self):
        # Issuing is staff-only and answers 403 before the account is looked up (API.md, order of checks).
        return [IsAdminUser()] if self.request.method == "POST" else [IsAuthenticated()]

    @staticmethod
    def cache_entries(account_id: int) -> list[EntryRef]:
        return [cache.invoices_entry(account_id)]

    @extend_schema(responses={200: serializers.CachedInvoicesSerializer, 404: NOT_FOUND})
    def get(self, request: Request, account_id: int) -> Response:
        return cached_response(selectors.account_invoices(account_id=account_id, viewer=request.user))

    @extend_schema(
        request=None,
        responses={201: serializers.InvoiceSerializer, 403: STAFF_ONLY, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, account_id: int) -> Response:
        invoice = services.invoice_issue(account_id=account_id)
        return Response(serializers.invoice_data(invoice), status=status.HTTP_201_CREATED)


class InvoicePayView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=None,
        responses={200: serializers.InvoiceSerializer, 403: STAFF_ONLY, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, account_id: int, invoice_id: int) -> Response:
        invoice = services.invoice_pay(account_id=account_id, invoice_id=invoice_id)
        return Response(serializers.invoice_data(invoice))
