"""Runs inside real GIMP 3 (python-fu-eval batch): builds images, calls Inlayer's procedures
non-interactively and writes what it observes as JSON for tests/editors/test_gimp.py.

`INLAYER_GIMP_SCENARIOS` names a JSON file {"scenarios": [...], "output": path}: what to build
and call (see `run_scenario`), in order, and where to write the observations. Pixel data travels
as hex; the images are small.
"""

import hashlib
import json
import os
import time
import traceback

from gi.repository import Gegl, Gimp, Gio, GObject

# Exact enough for every precision the tests use: 8 and 16 bits, half and full float.
EXACT_FORMAT = "RGBA float"

IMAGE_TYPES = {
    "rgb": (Gimp.ImageBaseType.RGB, Gimp.ImageType.RGBA_IMAGE, Gimp.ImageType.RGB_IMAGE),
    "gray": (Gimp.ImageBaseType.GRAY, Gimp.ImageType.GRAYA_IMAGE, Gimp.ImageType.GRAY_IMAGE),
    "indexed": (Gimp.ImageBaseType.INDEXED, None, None),
}
PRECISIONS = {
    "u8": Gimp.Precision.U8_NON_LINEAR,
    "u16": Gimp.Precision.U16_NON_LINEAR,
    "float": Gimp.Precision.FLOAT_LINEAR,
}


def read(drawable, x, y, width, height, pixel_format):
    rectangle = Gegl.Rectangle.new(x, y, width, height)
    return drawable.get_buffer().get(rectangle, 1.0, pixel_format, Gegl.AbyssPolicy.NONE)


def digest(drawable, pixel_format=EXACT_FORMAT):
    data = read(drawable, 0, 0, drawable.get_width(), drawable.get_height(), pixel_format)
    return hashlib.sha256(data).hexdigest()


def disc_rgba(width, height):
    """A dark red disc on white: a subject on a plain background."""
    radius_squared = (min(width, height) / 3) ** 2
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 <= radius_squared
            pixels += bytes((140, 20, 30, 255) if inside else (250, 250, 250, 255))
    return bytes(pixels)


def gradient_rgba(width, height):
    """A pattern with every pixel different enough to show a moved or rewritten pixel."""
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            pixels += bytes([(x * 4) % 256, (y * 4) % 256, (x * y) % 256, 255 if x % 7 else 200])
    return bytes(pixels)


def link_file(image):
    """A PNG of `image` beside the plan, for a link layer to show."""
    folder = os.path.dirname(os.environ["INLAYER_GIMP_SCENARIOS"])
    linked = Gio.File.new_for_path(os.path.join(folder, "linked.png"))
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, linked, None)
    return linked


def replace_source(image, layer, kind):
    """Turn the pixel layer "source" into the source `kind` names; return the new source.

    text, vector, link: a GIMP layer of that kind in its place (vector and link: GIMP 3.2);
    group: a layer group holding it; hidden: the layer hidden; in_hidden_group: the layer inside
    a hidden group."""
    if kind == "hidden":
        layer.set_visible(False)
        return layer
    if kind in ("group", "in_hidden_group"):
        if kind == "group":
            layer.set_name("inside")  # GIMP keeps names unique: free "source" for the group
        group = Gimp.GroupLayer.new(image, "source" if kind == "group" else "hidden-group")
        image.insert_layer(group, None, 0)
        image.reorder_item(layer, group, 0)
        if kind == "group":
            return group
        group.set_visible(False)
        return layer
    if kind == "text":
        rendered = Gimp.TextLayer.new(
            image, "Inlayer", Gimp.context_get_font(), 28, Gimp.Unit.pixel()
        )
    elif kind == "vector":
        path = Gimp.Path.new(image, "outline")
        image.insert_path(path, None, 0)
        corners = [(8, 6), (56, 10), (40, 44)]
        # Each point is (control, anchor, control); equal ones make straight edges.
        points = [value for corner in corners for _ in range(3) for value in corner]
        path.stroke_new_from_points(Gimp.PathStrokeType.BEZIER, points, True)
        rendered = Gimp.VectorLayer.new(image, path)
    elif kind == "link":
        rendered = Gimp.LinkLayer.new(image, link_file(image))
    else:
        raise ValueError(f"unknown source kind {kind!r}")
    image.remove_layer(layer)
    image.insert_layer(rendered, None, 0)
    rendered.set_name("source")
    return rendered


def build_image(spec):
    base_type, alpha_type, opaque_type = IMAGE_TYPES[spec.get("type", "rgb")]
    precision = PRECISIONS[spec.get("precision", "u8")]
    if base_type == Gimp.ImageBaseType.INDEXED:
        image = Gimp.Image.new(spec["width"], spec["height"], Gimp.ImageBaseType.RGB)
    else:
        image = Gimp.Image.new_with_precision(spec["width"], spec["height"], base_type, precision)
    layer_spec = spec["layer"]
    layer_type = alpha_type if layer_spec.get("alpha", True) else opaque_type
    layer = Gimp.Layer.new(
        image,
        "source",
        layer_spec["width"],
        layer_spec["height"],
        layer_type or Gimp.ImageType.RGBA_IMAGE,
        100.0,
        Gimp.LayerMode.NORMAL,
    )
    image.insert_layer(layer, None, 0)
    layer.set_offsets(layer_spec["x"], layer_spec["y"])
    rectangle = Gegl.Rectangle.new(0, 0, layer_spec["width"], layer_spec["height"])
    buffer = layer.get_buffer()
    pattern = disc_rgba if layer_spec.get("pattern") == "disc" else gradient_rgba
    buffer.set(rectangle, "R'G'B'A u8", pattern(layer_spec["width"], layer_spec["height"]))
    buffer.flush()
    if base_type == Gimp.ImageBaseType.INDEXED:
        image.convert_indexed(
            Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16, False, False, ""
        )
    if spec.get("source"):
        layer = replace_source(image, layer, spec["source"])
    for guide in spec.get("guides", []):
        add_guide_layer(image, guide)
    selection = spec.get("selection")
    if selection:
        x, y, width, height = selection["rect"]
        image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, width, height)
        if selection.get("feather"):
            Gimp.Selection.feather(image, selection["feather"])
    return image, layer


def add_guide_layer(image, spec):
    """A layer below the others that a procedure may take as a control or style layer: a dark
    cross on white, like a pencil sketch, or ("empty") nothing at all; "hidden" hides it."""
    width, height = image.get_width(), image.get_height()
    layer = Gimp.Layer.new(
        image, spec["name"], width, height, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL
    )
    image.insert_layer(layer, None, len(image.get_layers()))
    pixels = bytearray(width * height * 4)
    if not spec.get("empty"):
        for y in range(height):
            for x in range(width):
                line = abs(x - width // 2) <= 1 or abs(y - height // 2) <= 1
                pixels[(y * width + x) * 4 : (y * width + x + 1) * 4] = (
                    bytes((20, 20, 20, 255)) if line else bytes((255, 255, 255, 255))
                )
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), "R'G'B'A u8", bytes(pixels))
    buffer.flush()
    layer.set_visible(not spec.get("hidden"))


def layer_named(image, name):
    return next(item for item in image.get_layers() if item.get_name() == name)


def describe_layer(layer):
    _, x, y = layer.get_offsets()
    width, height = layer.get_width(), layer.get_height()
    info = {
        "name": layer.get_name(),
        "x": x,
        "y": y,
        "width": width,
        "height": height,
        "visible": layer.get_visible(),
        "alpha_min": min(read(layer, 0, 0, width, height, "A u8")),
        "mask": None,
        "parasite": None,
        "bytes_per_pixel": layer.get_bpp(),
        "gray": layer.is_gray(),
    }
    mask = layer.get_mask()
    if mask is not None:
        info["mask"] = read(mask, 0, 0, width, height, "Y u8").hex()
    parasite = layer.get_parasite("inlayer-parameters")
    if parasite is not None:
        info["parasite"] = json.loads(bytes(parasite.get_data()).decode())
    origin = layer.get_parasite("inlayer-origin")
    info["origin"] = None if origin is None else json.loads(bytes(origin.get_data()).decode())
    return info


def selection_bounds(image):
    """[x, y, width, height] of the selection, or None when nothing is selected."""
    _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    return [x1, y1, x2 - x1, y2 - y1] if non_empty else None


def describe_new_images(known_ids):
    """The images the call opened (an upscale's): size, resolution and layers; then closed."""
    described = []
    for opened in Gimp.get_images():
        if opened.get_id() in known_ids:
            continue
        _, x_resolution, y_resolution = opened.get_resolution()
        described.append(
            {
                "size": [opened.get_width(), opened.get_height()],
                "resolution": [x_resolution, y_resolution],
                "gray": opened.get_base_type() == Gimp.ImageBaseType.GRAY,
                "layers": [describe_layer(item) for item in opened.get_layers()],
            }
        )
        opened.delete()
    return described


def saved_and_reopened(image, built):
    """Save `image` as .xcf, load it back, and describe the layers Inlayer added."""
    folder = os.path.dirname(os.environ["INLAYER_GIMP_SCENARIOS"])
    saved = Gio.File.new_for_path(os.path.join(folder, "reopened.xcf"))
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, saved, None)
    reopened = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, saved)
    layers = [item for item in reopened.get_layers() if item.get_name() not in built]
    results = [describe_layer(item) for item in layers]
    reopened.delete()
    return results


def describe_kind(layer):
    """The layer's GIMP class, and whether a rendered layer (text, vector, link) was rasterized."""
    rasterized = layer.is_rasterized() if hasattr(layer, "is_rasterized") else None
    return {"class": type(layer).__name__, "rasterized": rasterized}


RUN_MODES = {
    "noninteractive": Gimp.RunMode.NONINTERACTIVE,
    # The values GIMP kept from an earlier run, as Filters ▸ Repeat uses them.
    "with-last-vals": Gimp.RunMode.WITH_LAST_VALS,
}


def text_values(procedure, config):
    """The procedure's text arguments as `config` holds them (None where GIMP kept one empty)."""
    return {
        spec.get_name(): config.get_property(spec.get_name())
        for spec in procedure.get_arguments()
        if spec.value_type == GObject.TYPE_STRING
    }


def call(procedure_name, image, layer, args, run_mode):
    """Run the procedure; return its status, its error message and the text values a new config
    held before `args` were set."""
    procedure = Gimp.get_pdb().lookup_procedure(procedure_name)
    if procedure is None:
        return "NOT_FOUND", f"{procedure_name} is not registered", {}
    config = procedure.create_config()
    texts_before = text_values(procedure, config)
    config.set_property("run-mode", RUN_MODES[run_mode])
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    for name, value in args.items():
        config.set_property(name, value)
    result = procedure.run(config)
    status = result.index(0)
    message = Gimp.get_pdb().get_last_error() if status != Gimp.PDBStatusType.SUCCESS else ""
    return status.value_nick.upper(), message, texts_before


def configure_server(config):
    """Point the plug-in at a server and token by rewriting its config folder's files."""
    folder = os.environ["INLAYER_CONFIG_DIR"]
    with open(os.path.join(folder, "server.json"), "w") as file:
        json.dump({"url": config["url"]}, file)
    with open(os.path.join(folder, "token"), "w") as file:
        file.write(config["token"])


def wait_for_marker(name, timeout=300):
    """Wait until the test (outside GIMP) writes the file `name` beside the plan."""
    path = os.path.join(os.path.dirname(os.environ["INLAYER_GIMP_SCENARIOS"]), name)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {name} within {timeout} s")
        time.sleep(0.2)


def write_marker(name):
    """Tell the test (outside GIMP) that a scenario is over."""
    folder = os.path.dirname(os.environ["INLAYER_GIMP_SCENARIOS"])
    with open(os.path.join(folder, name), "w") as marker:
        marker.write("done\n")


def run_scenario(spec):
    if spec.get("wait_for"):
        wait_for_marker(spec["wait_for"])
    if spec.get("server"):  # else the server the config folder names, as left by the test
        configure_server(spec["server"])
    image, layer = build_image(spec["image"])
    before = {
        "layers": [item.get_name() for item in image.get_layers()],
        "source": digest(layer),
        # As a person sees it: what a change of image mode (grey to RGB) must keep.
        "source_u8": digest(layer, "R'G'B'A u8"),
        "selection": digest(image.get_selection()),
        "selection_bounds": selection_bounds(image),
        "source_kind": describe_kind(layer),
        "image_size": [image.get_width(), image.get_height()],
    }
    built = set(before["layers"])
    guides = [guide["name"] for guide in spec["image"].get("guides", [])]
    before["guides"] = {name: digest(layer_named(image, name)) for name in guides}
    known_ids = {opened.get_id() for opened in Gimp.get_images()}
    run_mode = spec.get("run_mode", "noninteractive")
    # Layer arguments name a layer of the image (a control or style layer).
    layer_args = {
        argument: layer_named(image, name) for argument, name in spec.get("layer_args", {}).items()
    }
    status, message, texts_before = call(
        spec["procedure"], image, layer, {**spec.get("args", {}), **layer_args}, run_mode
    )
    layers = image.get_layers()
    source = layer
    _, source_x, source_y = source.get_offsets()
    observation = {
        "status": status,
        "error": message,
        "texts_before": texts_before,
        "before": before,
        "after": {
            "layers": [item.get_name() for item in layers],
            "source": digest(source),
            "source_u8": digest(source, "R'G'B'A u8"),
            "selection": digest(image.get_selection()),
            "selection_bounds": selection_bounds(image),
            "source_offsets": [source_x, source_y],
            "undo_enabled": image.undo_is_enabled(),
            "source_kind": describe_kind(source),
            "image_size": [image.get_width(), image.get_height()],
            "base_type": image.get_base_type().value_nick,
            "guides": {name: digest(layer_named(image, name)) for name in guides},
        },
        "results": [describe_layer(item) for item in layers if item.get_name() not in built],
        "result_positions": [image.get_item_position(item) for item in layers],
        "new_images": describe_new_images(known_ids),
        "selected_layers": [item.get_name() for item in image.get_selected_layers()],
    }
    if spec.get("save_and_reopen"):
        observation["reopened_results"] = saved_and_reopened(image, built)
    if spec.get("done_marker"):
        write_marker(spec["done_marker"])
    image.delete()
    return observation


with open(os.environ["INLAYER_GIMP_SCENARIOS"]) as plan_file:
    plan = json.load(plan_file)
observations = {}
for scenario in plan["scenarios"]:
    try:
        observations[scenario["name"]] = run_scenario(scenario)
    except Exception:
        observations[scenario["name"]] = {"status": "SCRIPT_ERROR", "error": traceback.format_exc()}
with open(plan["output"], "w") as output:
    json.dump(observations, output)
