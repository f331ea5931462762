// Package datasets turns real public interaction logs into unirec events,
// in event-time order, so they can be replayed through the real pipeline:
// MovieLens (ratings, tags and genres become the four canvases),
// MovieTweetings (tweeted IMDb ratings; genres and title words become the
// category and search canvases) and the Open Bandit Dataset (logged
// impressions with clicks and positions).
//
// It only reads files the user downloaded; it never ships or fetches data.
package datasets
