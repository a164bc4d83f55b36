from django.urls import path

from . import views

urlpatterns = [
    path("<id:user_id>/preferences", views.PreferencesView.as_view(), name="user-preferences"),
]
