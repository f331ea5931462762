package streamtest

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceTransaction produces recs with the transactional client cl in
// one transaction, in record batches of at most batch records (so that a
// fetch may end inside it), and commits it, or aborts it when abort.
func ProduceTransaction(ctx context.Context, cl *kgo.Client, recs []*kgo.Record, batch int, abort bool) error {
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	for part := range slices.Chunk(recs, batch) {
		if err := cl.ProduceSync(ctx, part...).FirstErr(); err != nil {
			return err
		}
	}
	end := kgo.TryCommit
	if abort {
		end = kgo.TryAbort
	}
	if err := cl.EndTransaction(ctx, end); err != nil {
		return fmt.Errorf("cannot end transaction: %w", err)
	}
	return nil
}
