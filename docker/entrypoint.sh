#!/bin/sh
# Entry point of the dataswarms images (docker/Dockerfile.cpu, docker/Dockerfile.gpu).
#
# Sets a sane environment, then runs the command it is given in place of itself (exec), so the command gets
# the container's signals: `prefect worker start ...`, `prefect server start ...`, `dataswarms run ...`.
# Without a command it runs `dataswarms --help`. Every variable below is only a default: a value set with
# `docker run -e` or in compose.yaml wins.
#
#   DATASWARMS_DATA   the volume everything persistent goes under (default /data)
#   DATASWARMS_HOME   dataswarms' model cache (the converted SmolLM2, embeddings): $DATASWARMS_DATA/dataswarms
#   HF_HOME           the Hugging Face cache (Hub models named by id): $DATASWARMS_DATA/huggingface
#   PREFECT_HOME      Prefect's profile and local database: $DATASWARMS_DATA/prefect
#   VLLM_CACHE_ROOT   vLLM's compile caches (GPU image): $DATASWARMS_DATA/vllm
#   VIRTUAL_ENV       the Python environment whose bin/ goes first on PATH (the images: /opt/venv)
#
# Prefect's anonymous usage analytics are off unless PREFECT_SERVER_ANALYTICS_ENABLED is set.
set -eu

DATASWARMS_DATA="${DATASWARMS_DATA:-/data}"
export DATASWARMS_DATA
export DATASWARMS_HOME="${DATASWARMS_HOME:-$DATASWARMS_DATA/dataswarms}"
export HF_HOME="${HF_HOME:-$DATASWARMS_DATA/huggingface}"
export PREFECT_HOME="${PREFECT_HOME:-$DATASWARMS_DATA/prefect}"
export VLLM_CACHE_ROOT="${VLLM_CACHE_ROOT:-$DATASWARMS_DATA/vllm}"
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
export PYTHONUNBUFFERED="${PYTHONUNBUFFERED:-1}"

if [ -n "${VIRTUAL_ENV:-}" ]; then
    case ":${PATH:-}:" in
        *":$VIRTUAL_ENV/bin:"*) ;;
        *) PATH="$VIRTUAL_ENV/bin${PATH:+:$PATH}" ;;
    esac
    export PATH
fi

# The caches must be writable by whoever runs the container (the images' user `dataswarms`, or --user).
for dir in "$DATASWARMS_HOME" "$HF_HOME" "$PREFECT_HOME" "$VLLM_CACHE_ROOT"; do
    if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
        echo "dataswarms entrypoint: $dir is not writable by uid $(id -u); mount a volume there that is" >&2
        exit 1
    fi
done

if [ "$#" -eq 0 ]; then
    set -- dataswarms --help
fi
exec "$@"
