from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("", views.index, name="index"),
    path("async/", views.async_dashboard, name="async-dashboard"),
    path("actions/<str:action>", views.act, name="act"),
]
