"""The table codec: round trips on UCI Adult, kind inference, overrides, CSV reading and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from genlab.data.table_files import read_table
from genlab.data.table_columns import infer_kind
from genlab.data.tables import TableCodec
from genlab.errors import ConfigError, DataError

ADULT_INTEGERS = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


@pytest.fixture(scope="module")
def adult(shared_data) -> pd.DataFrame:
    """5,000 rows of Adult's training file (missing values in workclass, occupation, native-country)."""
    return read_table(shared_data / "adult_train.csv").sample(5000, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def adult_codec(adult) -> TableCodec:
    return TableCodec().fit(adult)


def small_table() -> pd.DataFrame:
    """Every kind, with missing values in several columns."""
    return pd.DataFrame({
        "day": ["2020-01-01", "2021-03-04", None, "2019-12-31", "2020-06-30", "2020-01-01"],
        "stamp": pd.to_datetime(["2020-01-01 10:00:01", None, "2020-01-02 11:00:00", "2020-02-02 00:00:00",
                                 "2020-02-03 00:00:07", "2020-02-04 09:08:07"]).tz_localize("Europe/Paris"),
        "flag": [True, False, True, True, False, False],
        "maybe": [True, False, None, True, False, None],
        "whole": [1.0, None, 3.0, 4.0, 40.0, 7.0],
        "real": [0.5, 1.25, 2.0, -3.0, 0.75, 10.5],
        "colour": pd.Categorical(["red", "blue", "red", "green", None, "blue"]),
        "count": [1, 2, 3, 4, 5, 600],
        "text": ["a", "b", "a", "c", "c", "a"],
    })


@pytest.mark.parametrize("numeric", ["mode", "quantile"])
def test_adult_round_trip(adult, adult_codec, numeric):
    codec = adult_codec if numeric == "mode" else TableCodec(numeric="quantile").fit(adult)
    z = codec.encode(adult)
    assert z.dtype == np.float32 and z.shape == (len(adult), codec.width)
    back = codec.decode(z)
    assert list(back.columns) == list(adult.columns)
    for column in adult.columns:
        assert back[column].dtype == adult[column].dtype, column
        if numeric == "mode" or column not in ADULT_INTEGERS:
            pd.testing.assert_series_equal(back[column], adult[column], check_exact=True)
        else:
            # z = Phi^-1(F(x)) in float32 loses ~1e-7 of F in the sparse tails, where a quantile step is wide.
            span = adult[column].max() - adult[column].min()
            np.testing.assert_allclose(back[column], adult[column], rtol=0, atol=1e-4 * span)
            assert (back[column] == adult[column]).mean() > 0.999
    assert back.isna().mean().to_dict() == adult.isna().mean().to_dict()
    assert adult["workclass"].isna().any()           # the round trip covered missing values


def test_adult_layout(adult, adult_codec):
    kinds = adult_codec.column_kinds
    assert [c for c, k in kinds.items() if k == "integer"] == ADULT_INTEGERS
    assert set(kinds.values()) == {"integer", "categorical"}
    z = adult_codec.encode(adult)
    blocks = adult_codec.blocks
    assert blocks[0].start == 0 and blocks[-1].stop == adult_codec.width
    assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))
    for block in blocks:
        part = z[:, block.slice]
        if block.kind == "scalar":
            assert np.mean(np.abs(part) <= 0.99) > 0.99          # alpha within its mode for nearly all
        else:
            np.testing.assert_array_equal(part.sum(axis=1), 1.0)  # one-hot blocks
    workclass = [b for b in blocks if b.column == "workclass"]
    assert len(workclass) == 1 and workclass[0].width == adult["workclass"].nunique() + 1   # + missing slot
    assert [b.kind for b in blocks if b.column == "age"] == ["scalar", "modes"]


def test_decoding_model_outputs_stays_in_the_training_domain(adult, adult_codec):
    z = np.random.default_rng(0).normal(size=(2000, adult_codec.width)) * 2
    fake = adult_codec.decode(z)
    for column in adult.columns:
        seen = adult[column].dropna()
        made = fake[column].dropna()
        assert fake[column].dtype == adult[column].dtype
        if column in ADULT_INTEGERS:
            assert made.min() >= seen.min() and made.max() <= seen.max()
        else:
            assert set(made) <= set(seen), column
    assert fake["workclass"].isna().any() and not fake["education"].isna().any()


def test_state_is_json_and_rebuilds_the_codec(adult, adult_codec):
    state = json.loads(json.dumps(adult_codec.state()))
    rebuilt = TableCodec.from_state(state)
    np.testing.assert_array_equal(rebuilt.encode(adult.head(300)), adult_codec.encode(adult.head(300)))
    pd.testing.assert_frame_equal(rebuilt.decode(adult_codec.encode(adult.head(300))), adult.head(300))


def test_fitting_is_seeded(adult):
    a, b = (TableCodec(seed=3, mixture_rows=500).fit(adult[ADULT_INTEGERS[:2]]) for _ in range(2))
    assert a.state() == b.state()


def test_every_kind_round_trips_with_missing_values():
    table = small_table()
    codec = TableCodec().fit(table)
    assert codec.column_kinds == {"day": "datetime", "stamp": "datetime", "flag": "boolean", "maybe": "boolean",
                                  "whole": "integer", "real": "numeric", "colour": "categorical",
                                  "count": "integer", "text": "categorical"}
    pd.testing.assert_frame_equal(codec.decode(codec.encode(table)), table)
    missing_blocks = {b.column for b in codec.blocks if b.kind == "missing"}
    assert missing_blocks == {"day", "stamp", "whole"}


def test_infer_kind():
    assert infer_kind(pd.Series([1, 2, 3])) == "integer"
    assert infer_kind(pd.Series([1.0, np.nan, 3.0])) == "integer"
    assert infer_kind(pd.Series([1.5, 2.0])) == "numeric"
    assert infer_kind(pd.Series(["a", "b"])) == "categorical"
    assert infer_kind(pd.Series(["2020", "x"])) == "categorical"
    assert infer_kind(pd.Series(["2020-01-02", "2021-12-31 10:00:00"])) == "datetime"
    assert infer_kind(pd.Series([True, False])) == "boolean"
    assert infer_kind(pd.Series([True, None])) == "boolean"
    assert infer_kind(pd.Series(pd.to_datetime(["2020-01-01"]))) == "datetime"


def test_overrides(adult):
    codec = TableCodec(kinds={"education-num": "categorical", "age": "numeric"}, numeric="quantile").fit(adult)
    assert codec.column_kinds["education-num"] == "categorical"
    assert codec.cardinalities["education-num"] == adult["education-num"].nunique()
    back = codec.decode(codec.encode(adult))
    pd.testing.assert_series_equal(back["education-num"], adult["education-num"])
    np.testing.assert_allclose(back["age"], adult["age"], atol=1e-3)
    indices = codec.encode_indices(adult)
    assert indices.dtype == np.int64 and indices.shape == (len(adult), len(codec.cardinalities))
    assert (indices.max(axis=0) < np.array(list(codec.cardinalities.values()))).all()


def test_read_table_sniffs_delimiter_and_encoding(tmp_path):
    path = tmp_path / "cafe.csv"
    path.write_bytes("name;price;opened\nCafé Noir;2,5;2020-01-01\nBäckerei;3;\n".encode("cp1252"))
    table = read_table(path)
    assert list(table.columns) == ["name", "price", "opened"]
    assert table["name"].tolist() == ["Café Noir", "Bäckerei"]
    assert table["opened"].isna().tolist() == [False, True]
    assert read_table(path, delimiter=",").shape[1] == 1


@pytest.mark.parametrize("content", ["", "  \n", "a,b\n"])
def test_empty_csv_is_a_data_error(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataError, match="empty|no rows"):
        TableCodec().fit(path)


def test_bad_inputs_are_data_errors(adult):
    table = small_table()
    with pytest.raises(DataError, match="'nope' is not in the table"):
        TableCodec(kinds={"nope": "integer"}).fit(table)
    with pytest.raises(ConfigError, match="unknown kind"):
        TableCodec(kinds={"count": "decimal"})
    with pytest.raises(ConfigError, match="unknown numeric"):
        TableCodec(numeric="minmax")
    with pytest.raises(DataError, match="entirely missing"):
        TableCodec().fit(table.assign(void=None))
    with pytest.raises(DataError, match="declared non-missing but has 1 missing"):
        TableCodec(non_missing=("whole",)).fit(table)
    with pytest.raises(DataError, match="declared integer"):
        TableCodec(kinds={"real": "integer"}).fit(table)
    with pytest.raises(DataError, match="not numbers"):
        TableCodec(kinds={"text": "numeric"}).fit(table)
    with pytest.raises(DataError, match="not fitted"):
        TableCodec().encode(table)
    with pytest.raises(DataError, match="does not exist"):
        read_table("/nonexistent/table.csv")

    codec = TableCodec().fit(table)
    with pytest.raises(DataError, match="'purple', a category not seen"):
        codec.encode(table.assign(text=["a", "b", "a", "c", "c", "purple"]))
    with pytest.raises(DataError, match="'count' has 1 missing values but had none"):
        codec.encode(table.assign(count=[1, 2, None, 4, 5, 6]))
    with pytest.raises(DataError, match="lacks the training column"):
        codec.encode(table.drop(columns="flag"))
    with pytest.raises(DataError, match="shape"):
        codec.decode(np.zeros((2, codec.width + 1)))
    with pytest.raises(DataError, match="NaN"):
        codec.decode(np.full((2, codec.width), np.nan))
