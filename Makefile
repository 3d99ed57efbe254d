# The README's test command; .ci/run runs the same. The integration tests find
# a RabbitMQ themselves: AMQP_URL, else one at 127.0.0.1:5672, else one that
# testcontainers starts (internal/brokertest).
TEST_CMD = go test -race -count=1 -timeout 30m ./...

# staticcheck's version for `make lint` (fetched through the Go module proxy).
STATICCHECK = v0.8.2

.DEFAULT_GOAL := help
.PHONY: help build test test-short lint up down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build cmd/publisher and cmd/worker into bin/
	go build -o bin/ ./cmd/...

test: ## all tests with the race detector (README, Testing: how they find a RabbitMQ)
	$(TEST_CMD)

test-short: ## unit tests only, no broker needed
	go test -short -count=1 ./...

lint: ## go vet, staticcheck, and fail on files gofmt would change
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -w these files:"; echo "$$out"; exit 1; fi

up: ## start RabbitMQ, the publisher, the workers, PostgreSQL and the outbox relays (docker-compose.yml)
	docker compose up --build

down: ## stop and remove the compose services
	docker compose down

.PHONY: bench
bench: ## eventfleet vs bare amqp091-go and watermill-amqp on AMQP_URL (~7 min); flags: BENCH_FLAGS='-rounds 5'
	cd bench && AMQP_URL=$${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/} go run ./cmd/efbench $(BENCH_FLAGS)
