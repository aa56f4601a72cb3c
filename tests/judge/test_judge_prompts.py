"""Prompt templates: rendering, context, answer prefix, user files and their errors."""
import pytest

from pycomp.judge.prompts import DEFAULT_TEMPLATE, PairTemplate, TemplateError, load_template


def test_default_template_renders_items_attribute_and_context():
    t = PairTemplate()
    text = t.render("first text", "second text", attribute="more coherent", noun="summary")
    assert "Summary A:\nfirst text" in text and "Summary B:\nsecond text" in text
    assert "Which summary is more coherent, summary A or summary B?" in text
    assert "Article" not in text
    with_ctx = t.render("x", "y", attribute="more coherent", noun="summary", context="The article.",
                        context_noun="Article")
    assert with_ctx.startswith("Article:\nThe article.\n\n")
    assert t.render_prefix(attribute="more coherent", noun="summary") == "The summary that is more coherent is summary"


def test_format_string_template_from_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Q: which {noun} is {attribute}?\n1) {item_a}\n2) {item_b}\n")
    t = PairTemplate.from_file(path, labels=("1", "2"))
    assert t.kind == "format"
    assert t.render("x", "y", attribute="longer", noun="story") == "Q: which story is longer?\n1) x\n2) y"
    assert t.render_prefix(attribute="longer", noun="story") == "The story that is longer is story"


def test_jinja_template_with_answer_prefix_section(tmp_path):
    path = tmp_path / "t.j2"
    path.write_text("{{ item_a }} vs {{ item_b }} ({{ attribute }})\n[assistant]\nMy answer: {{ Noun }}\n")
    t = PairTemplate.from_file(path)
    assert t.kind == "jinja"
    assert t.render("x", "y", attribute="funnier", noun="joke") == "x vs y (funnier)"
    assert t.render_prefix(noun="joke") == "My answer: Joke"


@pytest.mark.parametrize("text,match", [
    ("Which is better? {item_a}", "no placeholder for item_b"),
    ("Compare the two.", "no placeholder for item_a and item_b"),
    ("{{ item_a }} {{ item_b }} {{ rubric }}", "unknown placeholder.*rubric"),
    ("{item_a} {item_b} {}", "positional field"),
    ("{{ item_a }} {{ item_b }} {% if %}", "syntax error"),
])
def test_bad_templates_are_refused(text, match):
    with pytest.raises(TemplateError, match=match):
        PairTemplate(text=text)


def test_template_file_errors(tmp_path):
    with pytest.raises(TemplateError, match="does not exist"):
        PairTemplate.from_file(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(TemplateError, match="is empty"):
        PairTemplate.from_file(empty)
    bad = tmp_path / "bad.txt"
    bad.write_text("{item_a}\n")
    with pytest.raises(TemplateError, match=r"bad.txt.*item_b"):
        PairTemplate.from_file(bad)


def test_answer_prefix_and_labels_are_checked():
    with pytest.raises(TemplateError, match="ends with whitespace"):
        PairTemplate(answer_prefix="The answer is ")
    with pytest.raises(TemplateError, match="labels"):
        PairTemplate(labels=("A", "A"))
    assert PairTemplate(answer_prefix="").render_prefix() == ""


def test_fingerprint_changes_with_the_template():
    a, b = PairTemplate(), PairTemplate(text=DEFAULT_TEMPLATE + "!")
    assert a.fingerprint() == PairTemplate().fingerprint()
    assert a.fingerprint()["sha256"] != b.fingerprint()["sha256"]
    assert load_template(None).fingerprint() == a.fingerprint()


@pytest.mark.llm
def test_chat_template_is_applied_with_the_answer_prefix(backend):
    t = PairTemplate()
    user = t.render("x", "y", attribute="better", noun="text")
    prompt = backend.render(user, answer_prefix=t.render_prefix())
    assert prompt.startswith("<|im_start|>")
    assert prompt.endswith("<|im_start|>assistant\nThe text that is better is text")
    with_system = backend.render(user, system="You judge texts.")
    assert "<|im_start|>system\nYou judge texts.<|im_end|>" in with_system
