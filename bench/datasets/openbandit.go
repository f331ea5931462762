package datasets

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/unirec/unirec/ingest"
)

// OpenBanditRow is one logged impression of the Open Bandit Dataset: an
// item shown at a position of the carousel, whether it was clicked, and the
// logging policy's propensity.
type OpenBanditRow struct {
	Time       time.Time
	Item       int
	Position   int32
	Click      bool
	Propensity float64
	// User is the user's (hashed) features joined: a user segment.
	User string
}

// openBanditTime is the timestamp layout of the Open Bandit files.
const openBanditTime = "2006-01-02 15:04:05.999999-07:00"

// LoadOpenBandit reads an Open Bandit impressions file (for example
// open-bandit/random_men_men.csv).
func LoadOpenBandit(path string) ([]OpenBanditRow, error) {
	var rows []OpenBanditRow
	err := readCSV(path, 10, func(rec []string) error {
		t, err := time.Parse(openBanditTime, rec[1])
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", rec[1], err)
		}
		item, e1 := strconv.Atoi(rec[2])
		pos, e2 := strconv.Atoi(rec[3])
		click, e3 := strconv.Atoi(rec[4])
		prop, e4 := strconv.ParseFloat(rec[5], 64)
		if e1 != nil || e2 != nil || e3 != nil || e4 != nil || (click != 0 && click != 1) {
			return fmt.Errorf("bad row %q", rec[:6])
		}
		rows = append(rows, OpenBanditRow{Time: t.UTC(), Item: item, Position: int32(pos), Click: click == 1,
			Propensity: prop, User: strings.Join(rec[6:10], "-")})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot load Open Bandit data: %w", err) // err names the file
	}
	return rows, nil
}

// OpenBanditClickDelay is how long after its impression a click is logged.
const OpenBanditClickDelay = time.Second

// OpenBanditEvents turns logged impressions into events of the
// notifications canvas (a home carousel): one impression per row, with its
// own request id and position, followed by a click when the row was
// clicked. Row i becomes request "ob-<i>" and item "ob-<item id>".
func OpenBanditEvents(rows []OpenBanditRow) []ingest.Event {
	out := make([]ingest.Event, 0, len(rows)+len(rows)/100)
	for i, r := range rows {
		pos := r.Position
		ev := ingest.Event{
			EventID: fmt.Sprintf("ob-i-%d", i), Time: r.Time, Canvas: "notifications", Action: "impression",
			RequestID: fmt.Sprintf("ob-%d", i), ItemID: "ob-" + strconv.Itoa(r.Item), Position: &pos,
			Context: map[string]string{"user_id": r.User},
		}
		out = append(out, ev)
		if r.Click {
			click := ev
			click.EventID, click.Action, click.Position = fmt.Sprintf("ob-c-%d", i), "click", nil
			click.Time = r.Time.Add(OpenBanditClickDelay)
			out = append(out, click)
		}
	}
	return out
}
