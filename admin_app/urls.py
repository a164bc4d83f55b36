from django.urls import path

from . import views

urlpatterns = [
    path("analytics/dashboard", views.DashboardAnalyticsView.as_view(), name="admin-analytics-dashboard"),
    path("cache/stats", views.CacheStatsView.as_view(), name="admin-cache-stats"),
    path("cache/<str:app>/keys", views.CacheKeysView.as_view(), name="admin-cache-keys"),
    path("cache/<str:app>", views.CacheClearView.as_view(), name="admin-cache-clear"),
]
