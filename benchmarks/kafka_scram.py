"""What SASL/SCRAM-SHA-512 costs a Kafka client at start, side by side with PLAINTEXT.

Measures, N times each: the stdlib SCRAM login of ``edge.kafka_login`` (TCP connect + the
SCRAM exchange), and a kafka-python client's time to a first metadata answer (``KafkaConsumer``
construction + ``topics()``) on the plain broker and on the secure broker. Prints medians.

    services/start kafka --secure
    nice -n 10 .venv/bin/python benchmarks/kafka_scram.py \\
        --secure 127.0.0.1:9192 --secrets .run/kafka-secure/secrets
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

from kafka import KafkaConsumer

from edge import kafka_login
from edge.settings import KafkaSettings


def first_metadata_s(kafka: KafkaSettings) -> float:
    started = time.perf_counter()
    consumer = KafkaConsumer(bootstrap_servers=kafka.servers, **kafka.kafka_python_auth())
    try:
        consumer.topics()
        return time.perf_counter() - started
    finally:
        consumer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain", default="127.0.0.1:9092")
    parser.add_argument("--secure", default="127.0.0.1:9192")
    parser.add_argument("--secrets", type=Path, default=Path(".run/kafka-secure/secrets"))
    parser.add_argument("--user", default="worker")
    parser.add_argument("-n", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("kafka").setLevel(logging.ERROR)
    password_file = args.secrets / f"{args.user}.password"
    password = password_file.read_text().strip()
    secure = KafkaSettings(
        bootstrap=args.secure,
        security_protocol="SASL_PLAINTEXT",
        username=args.user,
        password_file=str(password_file),
    )
    plain = KafkaSettings(bootstrap=args.plain)
    scram = [kafka_login.login(args.secure, args.user, password).handshake_s for _ in range(args.n)]
    plain_s = [first_metadata_s(plain) for _ in range(args.n)]
    secure_s = [first_metadata_s(secure) for _ in range(args.n)]
    ms = 1000.0
    print(f"{'measure (median of ' + str(args.n) + ')':<52} {'ms':>8}")
    print(f"{'stdlib SCRAM-SHA-512 login (connect + exchange)':<52} "
          f"{statistics.median(scram) * ms:8.1f}")
    print(f"{'kafka-python first metadata, PLAINTEXT':<52} "
          f"{statistics.median(plain_s) * ms:8.1f}")
    print(f"{'kafka-python first metadata, SASL_PLAINTEXT SCRAM':<52} "
          f"{statistics.median(secure_s) * ms:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
