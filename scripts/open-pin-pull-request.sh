#!/usr/bin/env bash
# retrain.yml: commits config/champion.yaml (pinned to the accepted challenger VERSION)
# on a branch of its own, pushes it with $GIT_TOKEN (scripts/with-git-token.sh) and opens
# a pull request with the comparison as its body ($GH_TOKEN, gh). The normal pipeline
# then promotes the new model like any change.
set -euo pipefail
version="${1:-}"
if [[ ! "$version" =~ ^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$ ]]; then
  echo "not a model version: '$version'" >&2
  exit 1
fi
if git diff --quiet -- config/champion.yaml; then
  echo "config/champion.yaml is unchanged: nothing to propose" >&2
  exit 1
fi
branch="retrain/$version"
git switch --create "$branch"
git -c user.name="github-actions[bot]" \
  -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
  commit --quiet -m "Pin challenger $version as the champion" -- config/champion.yaml
bash scripts/with-git-token.sh git push --quiet origin "$branch"
gh pr create --base "${BASE_BRANCH:-main}" --head "$branch" \
  --title "Champion: model $version (retrained)" \
  --body-file .delivery/reports/retrain/latest.md
