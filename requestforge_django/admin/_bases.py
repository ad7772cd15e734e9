"""Base classes of the admin's forms and ModelAdmins, parametrised for mypy only.

django-stubs makes Django's forms and admins generic in their model, but the classes
cannot be subscripted at run time (without django-stubs-ext).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.forms.models import BaseInlineFormSet

from ..models import ClientDefinition, Credential, PipelineDefinition, PipelineStep

if TYPE_CHECKING:
    AnyModelForm = forms.ModelForm[Any]
    ClientDefinitionModelForm = forms.ModelForm[ClientDefinition]
    PipelineDefinitionModelForm = forms.ModelForm[PipelineDefinition]
    PipelineStepInlineFormSet = BaseInlineFormSet[PipelineStep, PipelineDefinition, forms.ModelForm[PipelineStep]]
    AnyModelAdmin = admin.ModelAdmin[Any]
    CredentialModelAdmin = admin.ModelAdmin[Credential]
    PipelineStepStackedInline = admin.StackedInline[PipelineStep, PipelineDefinition]
    #: What :class:`~requestforge_django.admin.token_status.TokenStatusMixin` is mixed into.
    TokenStatusMixinBase = admin.ModelAdmin[Any]
else:
    AnyModelForm = ClientDefinitionModelForm = PipelineDefinitionModelForm = forms.ModelForm
    PipelineStepInlineFormSet = BaseInlineFormSet
    AnyModelAdmin = CredentialModelAdmin = admin.ModelAdmin
    PipelineStepStackedInline = admin.StackedInline
    TokenStatusMixinBase = object
