//! Flink ML's feature-engineering stages (`org.apache.flink.ml.feature.*`), one module per
//! stage, each with Flink's class name, params and model data.

crate::common::stage_modules! {
    standard_scaler,
    online_standard_scaler,
    min_max_scaler,
    max_abs_scaler,
    robust_scaler,
    imputer,
    k_bins_discretizer,
    variance_threshold_selector,
    univariate_feature_selector,
    vector_indexer,
    idf,
    vector_assembler,
    binarizer,
    bucketizer,
    dct,
    elementwise_product,
    interaction,
    normalizer,
    polynomial_expansion,
    vector_slicer,
    feature_hasher,
    tokenizer,
    regex_tokenizer,
    ngram,
    stop_words_remover,
    hashing_tf,
    count_vectorizer,
    string_indexer,
    one_hot_encoder,
}

pub use binarizer::Binarizer;
pub use bucketizer::Bucketizer;
pub use count_vectorizer::{CountVectorizer, CountVectorizerModel, CountVectorizerModelData};
pub use dct::DCT;
pub use elementwise_product::{ElementwiseProduct, VectorValue};
pub use feature_hasher::FeatureHasher;
pub use hashing_tf::HashingTF;
pub use idf::{IDFModel, IDFModelData, IDF};
pub use imputer::{Imputer, ImputerModel, ImputerModelData};
pub use interaction::Interaction;
pub use k_bins_discretizer::{KBinsDiscretizer, KBinsDiscretizerModel, KBinsDiscretizerModelData};
pub use max_abs_scaler::{MaxAbsScaler, MaxAbsScalerModel, MaxAbsScalerModelData};
pub use min_max_scaler::{MinMaxScaler, MinMaxScalerModel, MinMaxScalerModelData};
pub use ngram::NGram;
pub use normalizer::Normalizer;
pub use one_hot_encoder::{OneHotEncoder, OneHotEncoderModel, OneHotEncoderModelData};
pub use online_standard_scaler::{
    OnlineStandardScaler, OnlineStandardScalerModel, OnlineStandardScalerModelData,
};
pub use polynomial_expansion::PolynomialExpansion;
pub use regex_tokenizer::RegexTokenizer;
pub use robust_scaler::{QuantileSummary, RobustScaler, RobustScalerModel, RobustScalerModelData};
pub use standard_scaler::{StandardScaler, StandardScalerModel, StandardScalerModelData};
pub use stop_words_remover::StopWordsRemover;
pub use string_indexer::{
    IndexToStringModel, StringIndexer, StringIndexerModel, StringIndexerModelData,
};
pub use tokenizer::Tokenizer;
pub use univariate_feature_selector::{
    UnivariateFeatureSelector, UnivariateFeatureSelectorModel, UnivariateFeatureSelectorModelData,
};
pub use variance_threshold_selector::{
    VarianceThresholdSelector, VarianceThresholdSelectorModel, VarianceThresholdSelectorModelData,
};
pub use vector_assembler::VectorAssembler;
pub use vector_indexer::{VectorIndexer, VectorIndexerModel, VectorIndexerModelData};
pub use vector_slicer::VectorSlicer;
