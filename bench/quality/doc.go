// Package quality measures recommendation quality on real logs replayed in
// time order: it trains the unified model, the per-task (isolated) models
// and a per-task popularity baseline on the past and reports, per task,
// AUC, recall@10 and NDCG@10 on the future. It never trains on the test
// period and never splits at random.
package quality
