// Package testenv gives tests the real components they run against: an
// etcd (the localstack one named by FLOE_TEST_ETCD_ENDPOINTS, or an embedded
// etcd started for the test binary), a MinIO (named by
// FLOE_TEST_MINIO_ENDPOINT; tests that need it are skipped when it is unset,
// unless FLOE_TEST_REQUIRE_LOCALSTACK=1 turns the skip into a failure) and a
// PostgreSQL (named by FLOE_TEST_POSTGRES_URL; each test gets a database of
// its own, and tests are skipped when it is unset, unless
// FLOE_TEST_REQUIRE_POSTGRES=1). ProcessCPU measures the test process for
// benchmarks that report CPU per operation.
//
// Environment variables (written by localstack/start.sh):
//
//	FLOE_TEST_ETCD_ENDPOINTS      comma-separated etcd client URLs
//	FLOE_TEST_MINIO_ENDPOINT      host:port of MinIO's S3 API
//	FLOE_TEST_MINIO_ACCESS_KEY    MinIO access key
//	FLOE_TEST_MINIO_SECRET_KEY    MinIO secret key
//	FLOE_TEST_MINIO_BUCKET        a bucket that exists
//	FLOE_TEST_POSTGRES_URL        a PostgreSQL superuser's URL, postgres://...
//	FLOE_TEST_REQUIRE_LOCALSTACK  "1": fail instead of skip when MinIO is unset
//	FLOE_TEST_REQUIRE_POSTGRES    "1": fail instead of skip when PostgreSQL is unset
package testenv
