package stream

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordingStage records the ownership calls a loop makes.
type recordingStage struct{ calls []string }

func (s *recordingStage) Restore(_ context.Context, p []int32) error {
	s.calls = append(s.calls, fmt.Sprint("restore ", p))
	return nil
}
func (s *recordingStage) Revoke(p []int32) { s.calls = append(s.calls, fmt.Sprint("revoke ", p)) }
func (s *recordingStage) Process(context.Context, []*kgo.Record, func(*kgo.Record)) error {
	return nil
}
func (s *recordingStage) Commit()        {}
func (s *recordingStage) Abort() []int32 { return nil }

// Queued assignments and revocations apply in order: a partition assigned
// then revoked before the loop saw it is never restored; one revoked then
// assigned again is restored; revocations seen at the end of a transaction
// reach the stage at once and are not repeated; records of partitions the
// stage does not own are dropped.
func TestOwnershipChangesApplyInOrder(t *testing.T) {
	st := &recordingStage{}
	o := owner{stage: st, owned: map[int32]bool{}}
	ctx := context.Background()
	if err := o.apply(ctx, []ownership{{parts: []int32{0, 1, 2}}, {revoke: true, parts: []int32{2}}}); err != nil {
		t.Fatal(err)
	}
	o.revokeOnly([]ownership{{revoke: true, parts: []int32{1}}, {parts: []int32{1, 3}}})
	if err := o.apply(ctx, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"revoke [2]", "restore [0 1]", "revoke [1]", "restore [1 3]"}
	if !reflect.DeepEqual(st.calls, want) {
		t.Errorf("calls %q, want %q", st.calls, want)
	}
	recs := []*kgo.Record{{Partition: 0}, {Partition: 2}, {Partition: 3}}
	if got := o.filter(recs); len(got) != 2 || got[0].Partition != 0 || got[1].Partition != 3 {
		t.Errorf("filter kept %v, want partitions 0 and 3", got)
	}
}
