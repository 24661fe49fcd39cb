from django import forms

from omi_memory.dashboard import PageForm, TextField

from .models import EventType, WebhookDelivery


class WebhookEndpointForm(forms.Form):
    """A new endpoint: its URL, the events it receives, whose, and its secret (empty: a new one)."""

    url = TextField(max_length=2000, label="URL", widget=forms.URLInput(attrs={"placeholder": "https://…"}))
    events = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple, initial=EventType.values
    )
    uid = TextField(
        required=False, max_length=128, label="User", widget=forms.TextInput(attrs={"placeholder": "empty: all users"})
    )
    description = TextField(required=False, max_length=200)
    secret = TextField(
        required=False,
        max_length=200,
        label="Secret",
        widget=forms.TextInput(attrs={"placeholder": "empty: a new one", "autocomplete": "off"}),
    )

    def create_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "url": data["url"],
            "events": data["events"],
            "uid": data.get("uid", "").strip(),
            "description": data.get("description", ""),
            "secret": data.get("secret") or None,
        }


class EnableForm(forms.Form):
    enabled = forms.BooleanField(required=False)


class DeliveryFilterForm(PageForm):
    status = forms.ChoiceField(required=False, choices=[("", "any"), *WebhookDelivery.Status.choices])
