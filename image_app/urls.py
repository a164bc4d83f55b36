from django.urls import include, path

from . import views

# Included at "api/images" without a trailing slash (techbirdsfly/urls.py), so that both
# /api/images and /api/images/{id} match; the "/" group keeps Django's urls.W002 check quiet.
urlpatterns = [
    path("", views.ImageListView.as_view(), name="image-list"),
    path(
        "/",
        include(
            [
                path("<id:image_id>", views.ImageDetailView.as_view(), name="image-detail"),
                path("<id:image_id>/result", views.ImageResultView.as_view(), name="image-result"),
            ]
        ),
    ),
]
