"""service/ops"""
