from django.urls import path

from . import views

urlpatterns = [
    path("accounts", views.AccountListView.as_view(), name="billing-accounts"),
    path("summary/<id:account_id>", views.SummaryView.as_view(), name="billing-summary"),
    path("usage", views.UsageCreateView.as_view(), name="billing-usage-create"),
    path("usage/<id:account_id>", views.UsageView.as_view(), name="billing-usage"),
    path("invoices/<id:account_id>", views.InvoicesView.as_view(), name="billing-invoices"),
    path("invoices/<id:account_id>/<id:invoice_id>/pay", views.InvoicePayView.as_view(), name="billing-invoice-pay"),
]
