"""service/validation"""
