"""The Train tab's form, generated from TrainConfig's fields: names, help, choices and bounds.

Essentials (fields marked ``advanced=False``) come first; the rest sit under "Advanced". The
form's values come back as a dict of config keys, validated by TrainConfig like any other input,
so the form can never drift from the config.
"""

from __future__ import annotations

from dataclasses import Field, fields

import gradio as gr

from rats_app.config import TrainConfig
from rats_app.errors import UserError
from rats_app.fields import default_of

# Chosen elsewhere on the page (model, prompt source) or meaningless in a browser session.
EXCLUDED = ("model", "prompts", "device", "parallel", "sample_prompts")
LABELS = {"alpha": "α (matching weight)", "tau": "τ (gate temperature)", "reward_weight": "λ (reward weight)",
          "student_steps": "student steps (K)", "steps": "steps", "batch_size": "batch"}
LIST_OF_NUMBERS = ("horizons", "horizon_weights", "student_steps_choices", "student_steps_weights")
MAPPING_OF_LISTS = ("student_sigmas_by_nfe", "sample_sigmas_by_nfe")  # dict fields whose values are lists of numbers
MULTISELECT = ("watch_rewards",)  # list fields shown as a multiselect dropdown, whose value is the list itself


def form_fields() -> list[Field]:
    return [f for f in fields(TrainConfig) if f.name not in EXCLUDED]


def _info(f: Field) -> str:
    meta = f.metadata
    bounds = []
    if meta.get("low") is not None:
        bounds.append(f"{'>' if meta.get('low_open') else '≥'} {meta['low']}")
    if meta.get("high") is not None:
        bounds.append(f"≤ {meta['high']}")
    return meta["help"] + (f" ({', '.join(bounds)})" if bounds else "")


def component_for(f: Field, rewards: list[str]):
    """One gradio input for one config field (bounds are checked by TrainConfig, which names them)."""
    default, label, info = default_of(f), LABELS.get(f.name, f.name.replace("_", " ")), _info(f)
    elem_id = f"train-{f.name.replace('_', '-')}"
    choices = f.metadata.get("choices")
    if f.name == "reward":
        return gr.Dropdown(["world", *rewards], value=default, label="training reward", info=info, elem_id=elem_id)
    if f.name in MULTISELECT:
        return gr.Dropdown(rewards, value=default, multiselect=True, label=label, info=info, elem_id=elem_id)
    if isinstance(default, bool):
        return gr.Checkbox(value=default, label=label, info=info, elem_id=elem_id)
    if choices:
        return gr.Radio(list(choices), value=default, label=label, info=info, elem_id=elem_id)
    if isinstance(default, list):
        return gr.Textbox(value=", ".join(map(str, default)), label=label, info=info + " (comma-separated)",
                          elem_id=elem_id)
    if isinstance(default, dict):
        return gr.Textbox(value=_mapping_text(default), label=label, info=info + " (comma-separated key: value)",
                          elem_id=elem_id)
    if isinstance(default, (int, float)):
        return gr.Number(value=default, precision=0 if isinstance(default, int) else None, label=label, info=info,
                         elem_id=elem_id)
    return gr.Textbox(value=default, label=label, info=info, elem_id=elem_id)


def build_form(rewards: list[str]) -> tuple[list[str], list]:
    """Lay the form out (inside the current Blocks context); returns field names and components in order."""
    essentials = [f for f in form_fields() if not f.metadata.get("advanced", True)]
    advanced = [f for f in form_fields() if f.metadata.get("advanced", True)]
    names, components = [], []
    with gr.Row():
        for f in essentials:
            names.append(f.name)
            components.append(component_for(f, rewards))
    with gr.Accordion("Advanced", open=False):
        for start in range(0, len(advanced), 4):
            with gr.Row():
                for f in advanced[start:start + 4]:
                    names.append(f.name)
                    components.append(component_for(f, rewards))
    return names, components


def _number_list(text: str, name: str) -> list:
    from rats_app.ui.handlers import check_number

    return [check_number(x, name) for x in text.split(",") if x.strip()]


def _mapping_text(mapping: dict) -> str:
    """{2: 1.75} -> '2: 1.75'; {2: [1.0, 0.6]} -> '2: 1.0 0.6' (a list's numbers space-separated)."""
    return ", ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in mapping.items())


def _number_mapping(text: str, name: str) -> dict:
    """What _mapping_text writes, back (TrainConfig checks the keys and values)."""
    example = "'2: 1.0 0.6, 3: 1.0 0.7 0.4'" if name in MAPPING_OF_LISTS else "'2: 1.75, 1: 1.5'"
    pairs = [item.split(":") for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 or not pair[1].split() for pair in pairs):
        raise UserError(f"{name} must look like {example}, got {text!r}")
    values = [_number_list(",".join(v.split()), name) for _, v in pairs]
    if name not in MAPPING_OF_LISTS and any(len(v) != 1 for v in values):
        raise UserError(f"{name} must look like {example}, got {text!r}")
    keys = _number_list(",".join(k for k, _ in pairs), name)
    return {k: v if name in MAPPING_OF_LISTS else v[0] for k, v in zip(keys, values)}


def to_config_dict(names: list[str], values: list) -> dict:
    """Form values -> config keys (lists parsed from comma-separated text); TrainConfig validates."""
    by_name = {f.name: f for f in form_fields()}
    data = {}
    for name, value in zip(names, values):
        default = default_of(by_name[name])
        if isinstance(default, list) and isinstance(value, str):
            value = (_number_list(value, name) if name in LIST_OF_NUMBERS
                     else [x.strip() for x in value.split(",") if x.strip()])
        elif isinstance(default, dict) and isinstance(value, str):
            value = _number_mapping(value, name)
        data[name] = value
    return data


def values_from_config(names: list[str], config: dict) -> list:
    """Config keys -> the form's values, in the form's order (lists as comma-separated text, a
    multiselect's as the list itself): what ``to_config_dict`` reads back into the same keys."""
    def shown(name: str, value):
        if isinstance(value, dict):
            return _mapping_text(value)
        return ", ".join(map(str, value)) if isinstance(value, list) and name not in MULTISELECT else value

    return [shown(n, config[n]) for n in names]
