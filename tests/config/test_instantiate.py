"""instantiate: nested components are built children-first; argument errors name the fix."""
import pytest

from detzoo.config import REGISTRY, Config, instantiate, load_config, register
from detzoo.errors import ConfigError

BUILT = []  # names in construction order


class Node:
    def __init__(self, name, child=None, children=(), extra=None):
        # every child must already be an object when the parent is built
        for c in [child, *children, *(extra or {}).values()]:
            assert not isinstance(c, dict) or "type" not in c
        BUILT.append(name)
        self.name, self.child, self.children, self.extra = name, child, children, extra


class Backbone:
    def __init__(self, depth, num_stages=4, *, frozen_stages=-1):
        self.depth, self.num_stages, self.frozen_stages = depth, num_stages, frozen_stages


class Detector:
    def __init__(self, backbone, num_classes=80, class_names=()):
        self.backbone, self.num_classes, self.class_names = backbone, num_classes, class_names


@pytest.fixture(autouse=True)
def clean_state():
    BUILT.clear()
    saved = dict(REGISTRY)
    yield
    REGISTRY.clear()
    REGISTRY.update(saved)


def tree_cfg():
    return dict(
        type=Node,
        name="root",
        child=dict(type=Node, name="a", child=dict(type=Node, name="a1")),
        children=[dict(type=Node, name="b"), (dict(type=Node, name="c"), 3)],
        extra=dict(plain=dict(type=Node, name="d"), value=[1, dict(x=2)]),
    )


def test_builds_bottom_up():
    cfg = tree_cfg()
    root = instantiate(cfg)
    # children before parents, in key order (hand-worked post-order)
    assert BUILT == ["a1", "a", "b", "c", "d", "root"]
    assert isinstance(root, Node) and root.name == "root"
    assert root.child.name == "a" and root.child.child.name == "a1"
    assert isinstance(root.children, list) and root.children[0].name == "b"
    assert type(root.children[1]) is tuple and root.children[1][0].name == "c" and root.children[1][1] == 3
    # a dict without type comes back as a plain dict with its children built
    assert type(root.extra) is dict and root.extra["plain"].name == "d"
    assert root.extra["value"] == [1, {"x": 2}] and type(root.extra["value"][1]) is dict
    # the config itself is left untouched
    assert cfg == tree_cfg()


def test_configdict_and_plain_dict_without_type():
    cfg = Config(dict(model=dict(type=Backbone, depth=50), train_cfg=dict(rpn=dict(num=256))))
    built = instantiate(cfg)
    assert type(built) is dict and type(built["train_cfg"]["rpn"]) is dict
    assert isinstance(built["model"], Backbone) and built["model"].depth == 50
    assert instantiate([dict(type=Backbone, depth=18), 5])[0].depth == 18


def test_extra_kwargs_go_to_the_top_level_only():
    det = instantiate(
        dict(type=Detector, backbone=dict(type=Backbone, depth=101, frozen_stages=1)),
        class_names=("cat", "dog"),
        num_classes=2,
    )
    assert det.class_names == ("cat", "dog") and det.num_classes == 2
    assert det.backbone.depth == 101 and det.backbone.frozen_stages == 1
    with pytest.raises(ConfigError, match=r"\['num_classes'\] given both"):
        instantiate(dict(type=Detector, backbone=None, num_classes=3), num_classes=2)
    with pytest.raises(ConfigError, match="no 'type'"):
        instantiate(dict(a=1), b=2)


def test_wrong_kwarg_names_class_argument_and_suggestion():
    cfg = dict(type=Detector, backbone=dict(type=Backbone, dept=50))
    with pytest.raises(ConfigError) as info:
        instantiate(cfg)
    assert str(info.value) == (
        "cannot build Backbone at 'backbone': unexpected argument 'dept'; did you mean 'depth'? "
        "(valid parameters: depth, num_stages, frozen_stages)"
    )
    assert BUILT == []


def test_missing_required_argument():
    with pytest.raises(ConfigError, match="cannot build Backbone at 'model.0': missing required argument 'depth'"):
        instantiate(dict(model=[dict(type=Backbone, num_stages=3)]))


def test_error_inside_constructor_is_not_masked():
    class Strict:
        def __init__(self, depth):
            raise TypeError("depth must be one of 18, 50")

    with pytest.raises(TypeError, match="depth must be one of"):
        instantiate(dict(type=Strict, depth=7))


def test_string_types_resolve_through_the_registry():
    register(Backbone)
    register(Detector, name="Det")
    model = instantiate(dict(type="Det", backbone=dict(type="Backbone", depth=34)))
    assert isinstance(model, Detector) and isinstance(model.backbone, Backbone)
    # dotted import paths work without registration
    od = instantiate(dict(type="collections.OrderedDict", a=1))
    assert type(od).__name__ == "OrderedDict" and od["a"] == 1
    with pytest.raises(ConfigError) as info:
        instantiate(dict(type="Backbon", depth=1))
    assert str(info.value) == "unknown type 'Backbon' in 'type'; did you mean 'Backbone'?"
    with pytest.raises(ConfigError, match="cannot import type 'collections.OrderDict' in 'backbone.type'"):
        instantiate(dict(type=Detector, backbone=dict(type="collections.OrderDict")))


def test_nested_unknown_string_type_is_a_sub_config_for_the_parent():
    # MMDetection-style norm_cfg=dict(type="BN", ...) is read by the component itself.
    det = instantiate(dict(type=Detector, backbone=dict(type="BN", requires_grad=True, inner=[dict(a=1)])))
    assert det.backbone == {"type": "BN", "requires_grad": True, "inner": [{"a": 1}]}
    assert type(det.backbone) is dict


def test_registry_maps_a_name_to_one_class():
    register(Backbone)
    register(Backbone)  # same object again is fine

    class Backbone2:
        pass

    with pytest.raises(ConfigError, match="registry name 'Backbone' already maps to Backbone"):
        register(Backbone2, name="Backbone")
    assert REGISTRY["Backbone"] is Backbone


def test_instantiate_loaded_config(write_tree, helpers):
    root = write_tree(
        {
            "c.py": """
                from detzoo_cfgtest_helpers import Leaf, make_pair
                model = dict(type=make_pair, a=dict(type=Leaf, size=3), b=[dict(type=Leaf, size=4, scale=0.5)])
            """
        }
    )
    a, b = instantiate(load_config(root / "c.py").model)
    assert isinstance(a, helpers.Leaf) and a.size == 3 and a.scale == 1.0
    assert b[0].size == 4 and b[0].scale == 0.5
