"""The GitHub Actions workflow is valid YAML with a CPU job and a GPU job."""

from pathlib import Path

import yaml

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "ci.yml"


def load():
    return yaml.safe_load(WORKFLOW.read_text())


def test_cpu_job_runs_make_test_on_push_and_pull_request():
    workflow = load()
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as True
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(triggers)
    steps = workflow["jobs"]["cpu"]["steps"]
    assert any(step.get("run") == "make test" for step in steps)


def test_gpu_job_on_self_hosted_runner():
    job = load()["jobs"]["gpu"]
    assert job["runs-on"] == ["self-hosted", "gpu"]
    assert job["steps"][0]["run"] == "nvidia-smi"
    assert any(step.get("run") == "make test-gpu" for step in job["steps"])
    for trigger in ("schedule", "workflow_dispatch", "'gpu'"):
        assert trigger in job["if"]


def test_artifact_job_uploads_slides_exercises_and_the_site():
    steps = load()["jobs"]["artifacts"]["steps"]
    assert any("make slides site exercises" == step.get("run") for step in steps)
    uploads = [step["with"]["path"] for step in steps if step.get("uses", "").startswith("actions/upload-artifact")]
    assert any("build/slides" in path and "exercises" in path for path in uploads)
    assert "build/site" in uploads
