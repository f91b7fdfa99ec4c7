"""The hash and the JSON of configs as they were recorded: runs tables key "done" on the hash."""

from __future__ import annotations

import hashlib

import pytest

from styletransfer import TransferConfig as T

# (config, config_hash(), sha256 of to_json()) as main computed them before the settings were
# described by field metadata; a change here makes every recorded run look not done.
PINNED = [
    (
        T(),
        "05db4242d61f6d17865ae43f90bccb21f27fbe188afe5280a3c318cf960d6683",
        "afbad77f61e5aee2f0fc45275950b972992fabb793cedaa4dd9f05f1ed1a1b86",
    ),
    (
        T(method="dpst", size=128, steps=300, two_stage=True, style_weights=(1, 3)),
        "4073f9a3871bee096b709064019924331ceb3a92df720275ca68ec928251d37b",
        "261f8ebbea415da3b41ce46536343dbfd0ff000c9c67f75fd47225b119293a46",
    ),
    (
        T(method="photo-fast", size=512, extra={"grid": 32}),
        "a6f45266b2fac6f510d5dba4326f7daf429793e95cda188c324f08ce0657fb49",
        "f888d27f8777b7557327157d10e1c109b73da18c75ff8532cbb6e221566cc167",
    ),
    (
        T(method="fast", model="duo", size=256, style_weights=(0.5, 0.5)),
        "4a5c64016c45879e940d0362ab9d9b06792c1b2e9aaa7a0bf17e9adcddcb7c4e",
        "15b1ccadef4c0b15b68a42b5f1542d3d3cf30e6c4158c6da84b84760a0edeaab",
    ),
    (
        T(optimizer="adam", lr=0.1, levels=2, style_layers="relu1_1,relu2_1"),
        "e27ce6aa5e30d020e3c1bdb8fcf0c42572eccb3e38c21ae32459c7859358c32e",
        "977e5c87beeea13cf6ef6d7bb085df5c023b2e6e59a1541da55fe1b588c93817",
    ),
    (
        T(method="gatys", size=512, steps=300, levels=3, preserve_color=True, init="noise", seed=7),
        "c905467947c4f184f955b396d5b3c5f9bbf9acbb3828d867c3ce1e41d5306bee",
        "6a7ae759d69960869e19eae9cf7c9e116b7688c3d68589a28af86d5aa99b34ba",
    ),
    (
        T(method="dpst", extra={"auto_masks": 0}),
        "aa00c3300d0360b394c394d11ad072b438c23c0c4a0ad435a2714bf9510db813",
        "4d2ced8fd07d28b4c3ad5c0a74d6a7f3799f13afe396d0b6ef4088f7b1465de5",
    ),
    (
        T(method="dpst", extra={"segments": 4, "match_size": 256, "height_prior": 0.5}),
        "aaa727b95bf111afdd418acea7091ef943604ea426176096812c87de17544d42",
        "b126ec455016e93dc99e1dc885552c8a82f8b06c96f12d9fa7840b0b93d682b7",
    ),
    (
        T(method="photo-fast", size=1024, steps=40, extra={"refine": 1}),
        "30d82828034967370f4e441178d3a74762b27d12ca122f77a28e97de2f908898",
        "01f975414d82715e3c9dec72c176580c2bc13e7c4d6e7e5cac3e298b60f023f4",
    ),
    (
        T(method="photo-fast", extra={"semantic": 0, "segments": 2, "radius": 8}),
        "9575b16d5c87137240e93e0ce7b36928f64c4af3dfa57fdcc444436cc9bd9585",
        "bc4a4f1dc2146359a592c8cc7727862d9013865f1cfd623ecaf1cb6182c3bc0e",
    ),
    (
        T(method="fast", model="duo", extra={"batch_size": 2}),
        "8e133790f5eb5a09e9276b7b70d7cf7b90e420b0ecd12587494fb53ffeb06056",
        "79aefe54926d2bcc61f14de4ad1390ad08cf4f96ac51c19f172ee13f13c2aae8",
    ),
    (
        T(
            feature_model="vgg16",
            content_weight=1.0,
            style_weight=1e4,
            tv_weight=1e-3,
            style_layer_weights=(1, 2, 3, 4),
            upscale=True,
            mixed_precision=False,
        ),
        "388af3ffcf79808678395ed7d0f5a1b358c55ecb2f9bca54d2525b2d93fd4689",
        "e3bb2b15416d33d7f22ffe65ec27412318182ac7bff4bad53a74871064e30249",
    ),
    (
        T(
            method="dpst",
            photoreal_weight=1e4,
            matting_eps=1e-5,
            optimizer="adam",
            lr=0.01,
            weights="torchvision",
            device="cpu",
        ),
        "9032bcee97cf11895a05e534486729a551dd15135c4dd2f683eb9f1ab4b5ea91",
        "9022fc8e07321bffa00c4def0c32d5cd68952b174fb9657a834292ec2c8ff3ca",
    ),
]


@pytest.mark.parametrize(("config", "digest", "json_digest"), PINNED)
def test_the_hash_and_the_json_of_a_recorded_config_never_change(config, digest, json_digest):
    config.validate()
    assert config.config_hash() == digest
    assert hashlib.sha256(config.to_json().encode()).hexdigest() == json_digest, config.to_json()


@pytest.mark.parametrize(("config", "digest", "json_digest"), PINNED)
def test_a_recorded_config_reads_back_as_itself(config, digest, json_digest):
    back = T.from_json(config.to_json())
    assert back.config_hash() == digest
    assert hashlib.sha256(back.to_json().encode()).hexdigest() == json_digest
