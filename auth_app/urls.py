from django.urls import path

from . import views

urlpatterns = [
    path("register", views.RegisterView.as_view(), name="auth-register"),
    path("login", views.LoginView.as_view(), name="auth-login"),
    path("validate-token", views.ValidateTokenView.as_view(), name="auth-validate-token"),
    path("refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("logout", views.LogoutView.as_view(), name="auth-logout"),
    path("password", views.PasswordView.as_view(), name="auth-password"),
    path("me", views.MeView.as_view(), name="auth-me"),
]
