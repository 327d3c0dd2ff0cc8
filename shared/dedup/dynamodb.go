package dedup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/acme/unified-customer-service/shared/merge"
)

// The DynamoDB table's attributes. The table has one string hash key, pk;
// expiresAt is its TTL attribute (epoch seconds).
const (
	AttrPK          = "pk"
	AttrExpiresAt   = "expiresAt"
	attrLastUpdated = "lastUpdatedNs"
)

// DynamoDBAPI is the subset of the DynamoDB client the store uses.
type DynamoDBAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
}

// DynamoDB is the Store in AWS: one PAY_PER_REQUEST table keyed by pk,
// "seen#<event id>" items carrying expiresAt (DynamoDB's TTL deletes them
// within days of expiry; Seen checks expiresAt itself, so an expired id not
// yet deleted is not seen) and "applied#<system>#<key>" items carrying the
// watermark, written with a condition that only lets it move forward.
// Reads are strongly consistent.
type DynamoDB struct {
	api   DynamoDBAPI
	table string
	now   func() time.Time
}

var _ Store = (*DynamoDB)(nil)

// NewDynamoDB returns the store on table. now is the clock of the TTLs;
// time.Now when nil.
func NewDynamoDB(api DynamoDBAPI, table string, now func() time.Time) *DynamoDB {
	if now == nil {
		now = time.Now
	}
	return &DynamoDB{api: api, table: table, now: now}
}

func seenPK(id string) string                       { return "seen#" + id }
func appliedPK(key string, sys merge.Source) string { return "applied#" + string(sys) + "#" + key }

func (d *DynamoDB) get(ctx context.Context, pk string) (map[string]types.AttributeValue, error) {
	out, err := d.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(d.table),
		Key:            map[string]types.AttributeValue{AttrPK: &types.AttributeValueMemberS{Value: pk}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// number reads a numeric attribute.
func number(item map[string]types.AttributeValue, name string) (int64, error) {
	n, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("dedup: %w: attribute %s is missing or not a number", merge.ErrBadData, name)
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("dedup: %w: attribute %s is not an integer", merge.ErrBadData, name)
	}
	return v, nil
}

// Seen implements Store.
func (d *DynamoDB) Seen(ctx context.Context, id string) (bool, error) {
	item, err := d.get(ctx, seenPK(id))
	if err != nil {
		return false, fmt.Errorf("dedup: seen: %w: %w", merge.ErrUnavailable, err)
	}
	if item == nil {
		return false, nil
	}
	exp, err := number(item, AttrExpiresAt)
	if err != nil {
		return false, fmt.Errorf("dedup: seen: %w", err)
	}
	return !expired(time.Unix(exp, 0), d.now()), nil
}

// Applied implements Store.
func (d *DynamoDB) Applied(ctx context.Context, key string, system merge.Source) (time.Time, error) {
	item, err := d.get(ctx, appliedPK(key, system))
	if err != nil {
		return time.Time{}, fmt.Errorf("dedup: applied: %w: %w", merge.ErrUnavailable, err)
	}
	if item == nil {
		return time.Time{}, nil
	}
	ns, err := number(item, attrLastUpdated)
	if err != nil {
		return time.Time{}, fmt.Errorf("dedup: applied: %w", err)
	}
	return time.Unix(0, ns).UTC(), nil
}

// Record implements Store: per entry, the watermark's conditional put and
// then the id's put; up to 8 entries at once.
func (d *DynamoDB) Record(ctx context.Context, ttl time.Duration, entries ...Entry) error {
	exp := d.now().Add(ttl)
	secs := exp.Unix()
	if exp.Nanosecond() > 0 {
		secs++ // TTLs are whole seconds: round up
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, e := range entries {
		g.Go(func() error {
			if !e.LastUpdated.IsZero() {
				if err := d.setApplied(gctx, e.Key, e.System, e.LastUpdated); err != nil {
					return err
				}
			}
			_, err := d.api.PutItem(gctx, &dynamodb.PutItemInput{
				TableName: aws.String(d.table),
				Item: map[string]types.AttributeValue{
					AttrPK:        &types.AttributeValueMemberS{Value: seenPK(e.ID)},
					AttrExpiresAt: &types.AttributeValueMemberN{Value: strconv.FormatInt(secs, 10)},
				},
			})
			if err != nil {
				return fmt.Errorf("dedup: record: id: %w: %w", merge.ErrUnavailable, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// setApplied is a put conditional on the item being absent or older; a
// failed condition is a newer or equal watermark, kept.
func (d *DynamoDB) setApplied(ctx context.Context, key string, system merge.Source, t time.Time) error {
	_, err := d.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(d.table),
		Item: map[string]types.AttributeValue{
			AttrPK:          &types.AttributeValueMemberS{Value: appliedPK(key, system)},
			attrLastUpdated: &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixNano(), 10)},
		},
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #lu < :t"),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#lu": attrLastUpdated},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixNano(), 10)}},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dedup: record: watermark: %w: %w", merge.ErrUnavailable, err)
	}
	return nil
}
