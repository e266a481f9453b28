"""The README and docs/ pages: the README stays a front page, every relative link resolves,
and every command in their bash blocks uses options its parser knows (no command is run)."""

import argparse
import contextlib
import importlib
import io
import os
import re
import shlex

import pytest

pytestmark = pytest.mark.unit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
DOCS = os.path.join(REPO, "docs")
SETUP_COMMANDS = (
    "bash setup.sh",
    ".venv/bin/fairseq-sigmoid-qe quickstart",
    ".venv/bin/python -m pytest -q -n auto tests",
)
PLUGIN = "fairseq_sigmoid_qe"
# the older console scripts -> the subcommand they run
SCRIPTS = {
    "fairseq-sigmoid-qe-quickstart": "quickstart",
    "fairseq-sigmoid-qe-evaluate": "evaluate",
}


def pages():
    docs = sorted(os.path.join(DOCS, n) for n in os.listdir(DOCS) if n.endswith(".md"))
    return [README, *docs]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def outside_fences(text):
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def outside_code(text):
    """The text with fenced code blocks and inline code blanked out."""
    return re.sub(r"`[^`\n]*`", "", outside_fences(text))


def slug(heading):
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path):
    return {slug(m) for m in re.findall(r"^#+ (.+)$", outside_fences(read(path)), flags=re.M)}


def links(path):
    return re.findall(r"\]\(([^)\s]+)\)", outside_code(read(path)))


def bash_commands(path):
    """Each command of the page's ```bash blocks, as shell words (continuations joined,
    comments dropped)."""
    commands = []
    for block in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", read(path), flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def options_of(words):
    return [w.split("=", 1)[0] for w in words if w.startswith("--")]


class Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def cli_parser(command, monkeypatch, arguments=()):
    """The argparse parser a subcommand builds, caught when it parses (it never runs);
    ``arguments``: the command's, which choose the options of translate's and score's
    ``--tokenizer`` and ``--bpe``."""
    from fairseq_sigmoid_qe.cli.console import COMMANDS

    module_name = COMMANDS[command][0] if command in COMMANDS else command
    module = importlib.import_module(f"{PLUGIN}.cli.{module_name}")

    def catch(self, *args, **kwargs):
        raise Captured(self)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        patch.setattr(argparse.ArgumentParser, "parse_known_args", catch)
        patch.setattr("sys.excepthook", __import__("sys").excepthook)
        with pytest.raises(Captured) as caught:
            module.main([command, *arguments] if module_name == "raw_text" else [])
    return caught.value.parser


def cli_target(words):
    """(subcommand, arguments after it) of one of the plugin's commands, or None."""
    from fairseq_sigmoid_qe.cli.console import COMMANDS

    program = os.path.basename(words[0])
    if program in SCRIPTS:
        return SCRIPTS[program], words[1:]
    if program == "fairseq-sigmoid-qe":
        assert words[1:2] and words[1] in COMMANDS, f"not a subcommand: {words}"
        return words[1], words[2:]
    if re.fullmatch(r"python[\d.]*", program) and words[1:2] == ["-m"]:
        match = re.fullmatch(rf"{PLUGIN}\.cli\.(\w+)", words[2]) if len(words) > 2 else None
        if match:
            return match.group(1), words[3:]
    return None


def all_commands():
    return [(os.path.relpath(p, REPO), words) for p in pages() for words in bash_commands(p)]


def test_readme_is_a_front_page():
    assert len(read(README).splitlines()) <= 250


def test_readme_has_the_three_setup_commands_verbatim():
    blocks = re.findall(r"^```bash\n(.*?)^```", read(README), flags=re.S | re.M)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    for command in SETUP_COMMANDS:
        assert command in lines, command


def test_ci_runs_the_readme_test_command():
    assert SETUP_COMMANDS[2] in read(os.path.join(REPO, ".ci", "run")).splitlines()


@pytest.mark.parametrize("page", pages(), ids=lambda p: os.path.relpath(p, REPO))
def test_relative_links_resolve(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(full):
            broken.append(target)
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            broken.append(target)
    assert not broken, f"{os.path.relpath(page, REPO)}: broken links {broken}"


def test_pages_have_commands_of_the_plugin():
    found = [words for _, words in all_commands() if cli_target(words)]
    assert len(found) >= 10


def test_plugin_commands_use_known_options(monkeypatch):
    pytest.importorskip("fairseq")
    parsers, unknown = {}, []
    for page, words in all_commands():
        target = cli_target(words)
        if target is None:
            continue
        module, arguments = target
        from fairseq_sigmoid_qe.cli.raw_text import chosen

        key = (module, chosen(arguments, "--tokenizer"), chosen(arguments, "--bpe"))
        if key not in parsers:
            parsers[key] = cli_parser(module, monkeypatch, arguments)
        parser = parsers[key]
        known = set(parser._option_string_actions)
        unknown += [(page, module, o) for o in options_of(arguments) if o not in known]
    assert not unknown, unknown


def fairseq_commands():
    """The pages' fairseq-train / fairseq-generate commands with ``--user-dir`` the plugin."""
    found = []
    for page, words in all_commands():
        tool = os.path.basename(words[0])
        if tool in (
            "fairseq-train",
            "fairseq-generate",
            "fairseq-interactive",
        ) and f"--user-dir={PLUGIN}" in ("=".join(words[i : i + 2]) for i in range(len(words))):
            found.append((page, tool, words[1:]))
    return found


def test_fairseq_commands_parse_with_the_plugin():
    """Each fairseq command's options, the plugin's (its task, model, criterion and optimizer
    configs) included, parsed by fairseq's own parser as the command would be; the plugin is
    registered in-process instead of through --user-dir, as the generate hook picks the task."""
    pytest.importorskip("fairseq")
    from fairseq import options

    import fairseq_sigmoid_qe

    fairseq_sigmoid_qe.register_fairseq_components()
    commands = fairseq_commands()
    assert {tool for _, tool, _ in commands} == {
        "fairseq-train",
        "fairseq-generate",
        "fairseq-interactive",
    }
    for page, tool, arguments in commands:
        i = arguments.index("--user-dir")
        arguments = arguments[:i] + arguments[i + 2 :]
        if tool in ("fairseq-generate", "fairseq-interactive"):
            parser = (
                options.get_generation_parser()
                if tool == "fairseq-generate"
                else options.get_interactive_generation_parser()
            )
            if "--print-qe" in arguments and "--task" not in arguments:
                arguments += ["--task", "translation_qe"]
        else:
            parser = options.get_training_parser()
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            try:
                options.parse_args_and_arch(parser, input_args=arguments)
            except fairseq_sigmoid_qe.QEUserError as exc:
                # parsed: then head training's checks before any work (the architecture
                # applied to the command line) find no folder DATA_BIN
                assert str(exc).startswith("data folder DATA_BIN does not exist"), exc
            except SystemExit:
                message = errors.getvalue().strip().splitlines()[-1:]
                pytest.fail(f"{page}: {tool} {' '.join(arguments)}: {message}")


def test_citation_matches_the_package():
    yaml = pytest.importorskip("yaml")
    import fairseq_sigmoid_qe

    citation = yaml.safe_load(read(os.path.join(REPO, "CITATION.cff")))
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == fairseq_sigmoid_qe.__version__
    paper = citation["preferred-citation"]
    assert paper["type"] == "article" and paper["year"] == 2026
    assert [a["family-names"] for a in paper["authors"]] == ["Dinh", "Niehues"]
    assert os.path.isfile(os.path.join(REPO, "LICENSE"))
