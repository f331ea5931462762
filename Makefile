# unirec - the Makefile is the index: `make help` lists every target.
GO ?= go
BIN := bin/unirec
# Packages with goroutines shared between components run under the race detector.
RACE_PKGS := ./stream/... ./ingest/... ./online/... ./snapshot/... ./serve/...

.PHONY: help build run test test-faults test-race vet fuzz bench bench-ingest bench-trainer bench-quality clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

build: ## build bin/unirec
	$(GO) build -o $(BIN) ./cmd/unirec

run: build ## build and start everything in one process (broker :9092, API :8080, demo events)
	./$(BIN) run $(ARGS)

test: vet ## the whole test suite: unit, integration on the embedded broker, end-to-end, race detector
	$(GO) test -count=1 -timeout 10m ./...
	$(GO) test -count=1 -race -timeout 10m $(RACE_PKGS)

test-faults: ## the long fault tests (broker kill -9 mid-stream, ingest rebalance storm), skipped by `make test`
	$(GO) test -count=1 -timeout 10m -run 'TestBrokerKill9IsExact|TestIngestRebalanceStormIsExact' ./cmd/unirec -args -faults

vet: ## go vet, gofmt and go mod tidy -diff (go.mod says what is used directly)
	$(GO) vet ./...
	$(GO) mod tidy -diff
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)

fuzz: ## run every fuzz target for 20s each
	$(GO) test -run '^$$' -fuzz FuzzDecodeExample -fuzztime 20s ./stream
	$(GO) test -run '^$$' -fuzz FuzzDecodeEvent -fuzztime 20s ./ingest
	$(GO) test -run '^$$' -fuzz FuzzDecodeCatalogItem -fuzztime 20s ./ingest
	$(GO) test -run '^$$' -fuzz FuzzDecodeChunk -fuzztime 20s ./snapshot
	$(GO) test -run '^$$' -fuzz FuzzAssembly -fuzztime 20s ./snapshot
	$(GO) test -run '^$$' -fuzz FuzzList -fuzztime 20s ./snapshot
	$(GO) test -run '^$$' -fuzz FuzzRecommendRequest -fuzztime 20s ./serve

bench: ## micro-benchmarks (go test -bench)
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-trainer: ## trainer throughput vs raw consume and a featurize-only floor, bench/throughput (UNIREC_BENCH_EXAMPLES, default 300000)
	$(GO) test -run '^$$' -bench TrainerThroughput -benchtime 1x ./bench

bench-quality: ## MovieLens quality table: unified vs per-task vs popularity (needs ../shared/data)
	$(GO) test -run '^$$' -bench MovieLensQuality -benchtime 1x -v ./bench/quality

bench-ingest: ## ingest throughput vs raw franz-go consume and a copying-loop floor, bench/throughput (EVENTS=400000)
	$(GO) test -run '^$$' -bench IngestThroughput -benchtime 1x -v ./bench -args -ingest-events=$(or $(EVENTS),400000)

clean: ## remove the binary and the local data dir
	rm -rf bin data
