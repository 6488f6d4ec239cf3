"""Create an S3 bucket once the store answers: docker/compose.yaml's one-shot ``s3-init`` service.

    python create_bucket.py BUCKET [--wait SECONDS]

The endpoint, region and credentials come from the environment as botocore reads them
(``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``), the same variables through which s3fs, and so ``dataswarms``, finds the store.
Waits up to ``--wait`` seconds (default 60) for the endpoint to accept connections; a bucket that already
exists is left as it is. Exit status 0 when the bucket exists at the end, 1 otherwise, with one line saying
why. Credentials are never printed.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bucket")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the endpoint")
    args = parser.parse_args(argv)

    import botocore.session
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    client = botocore.session.get_session().create_client("s3")
    where = f"{client.meta.endpoint_url} (bucket {args.bucket})"
    deadline = time.monotonic() + args.wait
    while True:
        try:
            client.head_bucket(Bucket=args.bucket)
            print(f"s3: bucket {args.bucket} exists at {client.meta.endpoint_url}")
            return 0
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                print(f"s3: {where}: {code or exc}", file=sys.stderr)
                return 1
            break
        except NoCredentialsError:
            print(f"s3: {where}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", file=sys.stderr)
            return 1
        except BotoCoreError as exc:  # connection refused, DNS, timeouts: the store is not up yet
            if time.monotonic() >= deadline:
                print(f"s3: {where} did not answer within {args.wait:g} s: {exc}", file=sys.stderr)
                return 1
            time.sleep(1.0)

    region = client.meta.region_name
    kwargs = {"Bucket": args.bucket}
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code not in ("BucketAlreadyOwnedByYou",):
            print(f"s3: could not create {where}: {code or exc}", file=sys.stderr)
            return 1
    print(f"s3: created bucket {args.bucket} at {client.meta.endpoint_url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
