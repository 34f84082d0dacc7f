"""service/api/v1"""
